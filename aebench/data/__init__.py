"""Data-set readers, checksums and caches."""

from aebench.data.checksums import sha256_file, verify_sums
from aebench.data.idx import read_idx

__all__ = ["read_idx", "sha256_file", "verify_sums"]
