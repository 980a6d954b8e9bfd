"""Neighbours that vote across classes: a k-NN head over the train embeddings, alone or mixed with
a linear classifier's probabilities.

A retrieval refinement moves an answer inside the chosen class; here the k train examples most
similar (cosine) to a query vote for *their* classes, each with its similarity (negative
similarities count nothing), so the neighbours can overrule the classifier across classes. A
plain k-NN beat the trained head on small four-view sets (issue 20), and a mix of the two can beat
both. `VoteClassifier` is a drop-in for a head's `nn.Linear`: it returns log-probabilities, which
every consumer of logits (softmax, calibration, ensembles) reads as logits. The train embeddings
and classes are buffers, so a checkpoint carries its own index.

Once val has chosen k and the mixing weight, the val examples join the index (`train_size` rows
of train first, then val); val itself is then measured `models.held_out.held_out`, searching the
train rows only, as every index that takes in val is.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from geolocate.models.held_out import TrainRowsIndex, checked_train_size

VOTE_HEADS = ("knn", "knn+probe")  # the heads built on this module, as `train.small_data_heads` names them
VOTE_KS = (5, 10, 20)  # neighbours that vote, chosen on val
VOTE_ALPHAS = (0.25, 0.5, 0.75)  # weight of the votes beside a probe's probabilities, chosen on val
SMOOTHING = 1e-3  # probability floor per class before renormalising: a class no neighbour voted for is unlikely, not impossible


def knn_votes(query: torch.Tensor, keys: torch.Tensor, labels: torch.Tensor, num_classes: int, k: int) -> torch.Tensor:
    """Class probabilities [B, C] from the `k` nearest `keys` (unit rows [N, D]) of each query [B, D].

    Each neighbour adds its cosine similarity (clamped at 0, plus a hair so that all-negative
    neighbourhoods still vote) to its class; the votes are normalised, then floored by `SMOOTHING`.
    """
    sims = F.normalize(query.float(), dim=1) @ keys.float().T
    top = sims.topk(min(k, keys.shape[0]), dim=1)
    weights = top.values.clamp(min=0.0) + 1e-6
    votes = torch.zeros(query.shape[0], num_classes, dtype=weights.dtype, device=query.device)
    votes.scatter_add_(1, labels[top.indices], weights)
    votes = votes / votes.sum(dim=1, keepdim=True)
    return (votes + SMOOTHING) / (1.0 + SMOOTHING * num_classes)


def mix(classifier_probs: torch.Tensor, vote_probs: torch.Tensor, alpha: float) -> torch.Tensor:
    """(1 − α)·classifier + α·votes: α = 0 is the classifier alone, α = 1 the neighbours alone."""
    return (1.0 - alpha) * classifier_probs + alpha * vote_probs


class VoteClassifier(TrainRowsIndex, nn.Module):
    """Fused features [B, D] → log((1 − α)·softmax(linear) + α·votes of the k nearest indexed examples).

    Args:
        in_dim: width of the features.
        num_classes: number of classes.
        size: number of examples in the index (train's, then val's once val has chosen).
        k: neighbours that vote.
        alpha: weight of the votes (1: a pure k-NN head; its linear layer is then unused).
        train_size: the first rows of the index that are train examples (the rest are val's);
            None: all of them. Inside `models.held_out.held_out` the head searches only these.
    """

    def __init__(self, in_dim: int, num_classes: int, size: int, k: int = 10, alpha: float = 1.0,
                 train_size: int | None = None) -> None:
        super().__init__()
        train_size = checked_train_size(train_size, size, least=1, name="votes.train_size")  # k-NN needs a neighbour
        train_size = size if train_size is None else train_size
        self.linear = nn.Linear(in_dim, num_classes)
        self.k, self.alpha, self.out_features, self.train_size = int(k), float(alpha), num_classes, train_size
        self.register_buffer("keys", torch.zeros(size, in_dim))
        self.register_buffer("labels", torch.zeros(size, dtype=torch.long))

    @classmethod
    def of(cls, linear: nn.Linear, features: torch.Tensor, labels: torch.Tensor, k: int, alpha: float,
           train_size: int | None = None) -> "VoteClassifier":
        """A vote head over these examples (features [N, D], classes [N]; the first `train_size` of
        them train's, None: all) mixed with `linear`."""
        head = cls(linear.in_features, linear.out_features, features.shape[0], k, alpha, train_size)
        head.linear.load_state_dict(linear.state_dict())
        with torch.no_grad():
            head.keys.copy_(F.normalize(features.float(), dim=1))
            head.labels.copy_(labels.long())
        return head

    @classmethod
    def joined(cls, linear: nn.Linear, train: tuple[torch.Tensor, torch.Tensor], val: tuple[torch.Tensor, torch.Tensor],
               k: int, alpha: float) -> "VoteClassifier":
        """The head val chose (k, α), its index train's (features, classes) then val's."""
        features, labels = (torch.cat([a, b]) for a, b in zip(train, val))
        return cls.of(linear, features, labels, k, alpha, train_size=int(train[0].shape[0]))

    @property
    def settings(self) -> dict:
        """What rebuilds this head's shape (`FusionHead(votes=…)`): the index size, k, α and the train rows."""
        return {"size": int(self.keys.shape[0]), "k": self.k, "alpha": self.alpha, "train_size": self.train_size}

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        keys, labels = self.searchable(self.keys, self.labels)  # unsliced unless held out: the exported graph holds the whole index
        votes = knn_votes(features, keys, labels, self.out_features, self.k)
        if self.alpha >= 1.0:
            return votes.log()
        return mix(self.linear(features).float().softmax(dim=1), votes, self.alpha).log()
