"""The k-NN vote head: neighbours vote across classes, alone or mixed with a classifier."""

from __future__ import annotations

import torch
from torch import nn

from geolocate.models.multiview import FusionHead
import pytest

from geolocate.models.held_out import held_out
from geolocate.models.votes import SMOOTHING, VoteClassifier, knn_votes, mix

# Four train examples in three classes; a query sits between the two of class 2 and one of class 0.
KEYS = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.8, 0.2], [-1.0, 0.0]]), dim=1)
LABELS = torch.tensor([0, 2, 2, 1])


def test_votes_spread_over_the_classes_of_the_nearest_neighbours():
    probs = knn_votes(torch.tensor([[0.9, 0.1]]), KEYS, LABELS, 3, k=3)[0]
    assert torch.isclose(probs.sum(), torch.tensor(1.0))
    assert probs[2] > probs[0] > probs[1]  # two neighbours of class 2 outvote one of class 0
    assert probs[1] < 2 * SMOOTHING  # the far class got no vote, only the floor
    sims = KEYS[:3] @ torch.nn.functional.normalize(torch.tensor([0.9, 0.1]), dim=0)
    expected_share = float(sims[1:].sum() / sims.sum())  # similarity-weighted, not one vote each
    assert abs(float(probs[2]) - expected_share) < 3 * SMOOTHING


def test_one_neighbour_is_a_nearest_neighbour_and_negative_similarities_count_nothing():
    assert knn_votes(torch.tensor([[0.0, 1.0]]), KEYS, LABELS, 3, k=1)[0].argmax() == 2
    far = knn_votes(torch.tensor([[-1.0, 0.0]]), KEYS, LABELS, 3, k=4)[0]
    assert far.argmax() == 1  # the only neighbour with a positive similarity decides


def test_mixing_weight_runs_from_the_classifier_to_the_votes():
    clf, votes = torch.tensor([[0.7, 0.2, 0.1]]), torch.tensor([[0.1, 0.1, 0.8]])
    assert torch.equal(mix(clf, votes, 0.0), clf) and torch.equal(mix(clf, votes, 1.0), votes)
    assert mix(clf, votes, 0.5).argmax() == 2 and torch.isclose(mix(clf, votes, 0.5).sum(), torch.tensor(1.0))


def test_a_vote_head_is_a_drop_in_classifier_and_rebuilds_from_its_settings():
    torch.manual_seed(0)
    linear = nn.Linear(2, 3)
    head = VoteClassifier.of(linear, KEYS * 3.0, LABELS, k=2, alpha=0.5)  # keys are stored as unit rows
    logits = head(torch.tensor([[0.9, 0.1], [-1.0, 0.1]]))
    assert logits.shape == (2, 3) and torch.allclose(logits.exp().sum(1), torch.ones(2))
    fusion = FusionHead(2, 3, kind="probe", votes=head.settings)  # what a checkpoint rebuilds
    fusion.classifier.load_state_dict(head.state_dict())
    assert fusion.model_kwargs["votes"] == {"size": 4, "k": 2, "alpha": 0.5, "train_size": 4}
    assert torch.allclose(fusion.classifier(torch.tensor([[0.9, 0.1]])), logits[:1])


def test_val_joins_the_index_and_a_held_out_head_searches_only_the_train_rows():
    torch.manual_seed(0)
    linear = nn.Linear(2, 3)
    train, val = (KEYS[:3], LABELS[:3]), (KEYS[3:], LABELS[3:])  # val's one example is the only class 1
    joined = VoteClassifier.joined(linear, train, val, k=1, alpha=1.0)
    alone = VoteClassifier.of(linear, *train, k=1, alpha=1.0)
    query = torch.tensor([[-1.0, 0.05]])  # nearest to val's example
    assert joined.settings == {"size": 4, "k": 1, "alpha": 1.0, "train_size": 3}
    assert joined(query).argmax() == 1  # test and predict: val's example is a neighbour
    with held_out(nn.Sequential(joined)):  # any model holding vote heads
        assert torch.equal(joined(query), alone(query))  # val measured as if it had never joined
    assert not joined.held_out and joined(query).argmax() == 1  # the state ends with the block


@pytest.mark.parametrize("train_size", [0, 5, 2.5, True, "3"])
def test_a_train_size_that_is_no_part_of_the_index_is_refused(train_size):
    with pytest.raises(ValueError, match="votes.train_size"):
        VoteClassifier(2, 3, size=4, train_size=train_size)


def test_held_out_blocks_nest():
    head = VoteClassifier.of(nn.Linear(2, 3), KEYS, LABELS, k=1, alpha=1.0, train_size=3)
    with held_out(head):
        with held_out(head):
            pass
        assert head.held_out  # the inner block gave back what the outer one set
    assert not head.held_out


@pytest.mark.parametrize("train_size", [10**6, 0, "3"])
def test_a_vote_head_checkpoint_with_an_edited_train_size_is_refused_in_one_line(tmp_path, train_size):
    from geolocate.artifacts.checkpoint import load_checkpoint, save_checkpoint
    from geolocate.errors import UserError
    from geolocate.models import create_model

    votes = {"size": 4, "k": 2, "alpha": 1.0, "train_size": 3}
    model = create_model("tiny_resnet", num_classes=3, votes=votes)
    classes = [{"cell_id": f"c{i}", "centroid_lat": 0.0, "centroid_lon": float(i), "city": None} for i in range(3)]
    meta = {"model": {"name": "tiny_resnet", "kwargs": {**model.model_kwargs, "votes": {**votes, "train_size": train_size}},
                      "num_classes": 3}, "classes": classes, "preprocessing": model.data_config}
    save_checkpoint(tmp_path / "best", model, meta)
    with pytest.raises(UserError, match="cannot be built") as caught:
        load_checkpoint(tmp_path / "best")
    assert "\n" not in str(caught.value) and "train_size" in str(caught.value)
