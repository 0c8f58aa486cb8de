"""Training schedules (Zhou et al. §III, Erhan et al. 2010): each is a list of stages.

Layer indices are 0-based: layer 0 is fed by x. ``epochs`` of a layer-wise schedule
counts per layer, the papers' convention.
"""

from __future__ import annotations

from pydantic import Field

from aebench.components import MAX_EPOCHS, Schedule, ScheduleParams, Stage, per_member
from aebench.hookspecs import hookimpl


def _layerwise(n: int, p: ScheduleParams, target: str, prefix: str) -> list[Stage]:
    return [
        Stage(f"{prefix}{j}", (j,), j + 1, target, p.epochs, corrupt="trained", lr=p.lr)  # type: ignore[arg-type]
        for j in range(n)
    ]


class Joint(Schedule):
    name = "joint"
    summary = "J: all layers trained together on the input-space loss, local corruption and regularizers (eq. 8)."

    def stages(self, n_layers):
        return [Stage("joint", tuple(range(n_layers)), n_layers, "input", self.params.epochs, lr=self.params.lr)]


class Layerwise(Schedule):
    name = "layerwise"
    summary = "L: greedy; layer j reconstructs its own clean input h^(j-1), lower layers frozen (eq. 12)."

    def stages(self, n_layers):
        return _layerwise(n_layers, self.params, "local", "layer")


class LayerwiseInput(Schedule):
    name = "layerwise-input"
    summary = "Greedy, but layer j's loss is measured against x through the frozen lower decoders (eq. 11)."

    def stages(self, n_layers):
        return _layerwise(n_layers, self.params, "input", "layer-input")


class PretrainJointParams(ScheduleParams):
    joint_epochs: int | None = Field(
        None, ge=1, le=MAX_EPOCHS, description="Epochs of the joint phase; default: `epochs`."
    )


class PretrainJoint(Schedule):
    name = "pretrain-joint"
    summary = "U: layer-wise pre-training, then joint training without regularization (no corruption, no regularizers)."
    Params = PretrainJointParams
    regularize_joint = False  # a DAE's regularizer is its corruption: U turns both off

    def stages(self, n_layers):
        p = self.params
        joint = Stage(
            "joint",
            tuple(range(n_layers)),
            n_layers,
            "input",
            p.joint_epochs or p.epochs,
            corrupt="all" if self.regularize_joint else "none",
            regularize=self.regularize_joint,
            lr=p.lr,
        )
        return [*_layerwise(n_layers, p, "local", "layer"), joint]


class PretrainJointReg(PretrainJoint):
    name = "pretrain-joint-reg"
    summary = "UJ: layer-wise pre-training, then joint training with its corruption and regularizers."
    regularize_joint = True


class Alpha(Schedule):
    name = "alpha"
    summary = "Eq. 9–10: the joint loss, but only layer j trainable for `epochs` epochs, bottom to top."

    def stages(self, n_layers):
        p = self.params
        return [Stage(f"alpha{j}", (j,), n_layers, "input", p.epochs, lr=p.lr) for j in range(n_layers)]


class SupervisedParams(ScheduleParams):
    epochs: int = Field(100, ge=1, le=MAX_EPOCHS, description="Maximum epochs.")
    patience: int | None = Field(
        10, ge=1, le=MAX_EPOCHS, description="Stop after this many epochs without a better validation error."
    )


class Finetune(Schedule):
    name = "finetune"
    summary = "Encoder + softmax trained on labels from the current weights, early stopping on validation error."
    Params = SupervisedParams
    reinit = False

    def stages(self, n_layers):
        p = self.params
        return [
            Stage(
                self.name,
                tuple(range(n_layers)),
                n_layers,
                "labels",
                p.epochs,
                corrupt="none",
                regularize=False,
                lr=p.lr,
                patience=p.patience,
                train_head=True,
                reinit=self.reinit,
            )
        ]


class Supervised(Finetune):
    name = "supervised"
    summary = "The same network trained on labels from its random initialisation (no pre-training baseline)."
    reinit = True


class NoStages(Schedule):
    name = "none"
    summary = (
        "No training at all: in a chain of schedules, switches a stage off from a sweep "
        "(Erhan et al.'s arm without pre-training: `none` then `finetune` trains from the random init)."
    )
    may_be_empty = True

    def stages(self, n_layers):
        return []


class HybridParams(SupervisedParams):
    alpha: float = per_member(
        1.0, ge=0, description="Weight α of the input reconstruction loss added to the label loss."
    )


class Hybrid(Schedule):
    name = "hybrid"
    summary = "L_disc + α L_gen: softmax on the top code plus α × input-space reconstruction, all layers."
    Params = HybridParams

    def stages(self, n_layers):
        p = self.params
        return [
            Stage(
                "hybrid",
                tuple(range(n_layers)),
                n_layers,
                "hybrid",
                p.epochs,
                lr=p.lr,
                alpha=p.alpha,
                patience=p.patience,
                train_head=True,
            )
        ]


@hookimpl
def aebench_schedules():
    return [
        Joint,
        Layerwise,
        LayerwiseInput,
        PretrainJoint,
        PretrainJointReg,
        Alpha,
        Finetune,
        Supervised,
        NoStages,
        Hybrid,
    ]
