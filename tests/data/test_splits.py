import datasets
import pytest

from hf_musiccodec.data import split_groups, split_paths, track_group_key, train_validation_split
from hf_musiccodec.data.splits import assign_split


@pytest.mark.parametrize(
    "name, key",
    [
        ("music/Frantic-old.ogg", "frantic"),
        ("frantic.ogg", "frantic"),
        ("theme_enhanced.flac", "theme"),
        ("Main Menu - Remix.mp3", "main_menu"),
        ("x_old_v2.wav", "x"),
        ("song (1).ogg", "song"),
        ("song.v2.opus", "song"),
        ("battle_intro.ogg", "battle"),
        ("battle-loop.ogg", "battle"),
        ("victory2.ogg", "victory2"),  # a different jingle, not a version marker
        ("track_01.ogg", "track_01"),
        ("old.ogg", "old"),  # never strip a name down to nothing
    ],
)
def test_track_group_key(name, key):
    assert track_group_key(name) == key


def test_near_duplicates_share_a_split_for_any_seed():
    paths = [f"m/track{i}.ogg" for i in range(30)] + [f"m/track{i}_enhanced.ogg" for i in range(30)]
    paths += [f"old/track{i}-old.flac" for i in range(30)]
    for seed in range(5):
        splits = dict(zip(paths, split_paths(paths, 0.2, seed)))
        for i in range(30):
            assert splits[f"m/track{i}.ogg"] == splits[f"m/track{i}_enhanced.ogg"] == splits[f"old/track{i}-old.flac"]


def test_split_is_deterministic_and_order_independent():
    paths = [f"t{i}.wav" for i in range(50)]
    a = dict(zip(paths, split_paths(paths, 0.1, seed=3)))
    b = dict(zip(paths[::-1], split_paths(paths[::-1], 0.1, seed=3)))
    assert a == b
    assert a != dict(zip(paths, split_paths(paths, 0.1, seed=4)))


def test_rank_split_hits_the_fraction_by_weight():
    keys = [f"k{i}" for i in range(40)]
    splits = split_groups(keys, 0.1, weights=[1.0] * 40)
    assert splits.count("validation") == 4
    # Weighted by duration: validation gets ~10 % of the time, not of the count.
    weights = [100.0] + [1.0] * 39
    splits = split_groups(keys, 0.1, weights=weights)
    val_weight = sum(w for w, s in zip(weights, splits) if s == "validation")
    assert 0.1 * 139 <= val_weight <= 0.1 * 139 + 100


def test_small_sets_get_both_splits_and_threshold_method():
    assert sorted(split_groups(["a", "b"], 0.1)) == ["train", "validation"]
    assert sorted(split_groups(["a", "b"], 0.99)) == ["train", "validation"]
    assert split_groups(["a", "b"], 0.0) == ["train", "train"]
    # Threshold: a key's split does not depend on the other keys.
    keys = [f"k{i}" for i in range(100)]
    alone = [split_groups([k], 0.3, method="threshold")[0] for k in keys]
    assert split_groups(keys, 0.3, method="threshold") == alone == [assign_split(k, 0.3) for k in keys]
    with pytest.raises(ValueError):
        split_groups(keys, 0.3, method="random")


def test_train_validation_split_dataset():
    paths = [f"t{i}.wav" for i in range(20)] + [f"t{i}-old.wav" for i in range(20)]
    ds = datasets.Dataset.from_dict({"path": paths, "duration": [1.0] * 40})
    dd = train_validation_split(ds, 0.25, seed=1)
    assert len(dd["train"]) + len(dd["validation"]) == 40
    assert len(dd["validation"]) == 10  # 5 groups of 2
    groups = {track_group_key(p) for p in dd["validation"]["path"]}
    assert not groups & {track_group_key(p) for p in dd["train"]["path"]}
    # An existing split column (from a manifest) is respected.
    fixed = ds.add_column("split", ["validation"] + ["train"] * 39)
    assert train_validation_split(fixed)["validation"]["path"] == ["t0.wav"]


def test_three_way_split_keeps_groups_together():
    from hf_musiccodec.data import three_way_split

    keys = [f"k{i // 2}" for i in range(200)]  # 100 groups of two
    splits = three_way_split(keys, 0.1, 0.2, seed=0)
    assert splits.count("test") == 40 and splits.count("validation") == 20
    assert all(splits[i] == splits[i + 1] for i in range(0, 200, 2))
    assert splits == three_way_split(keys, 0.1, 0.2, seed=0)
