"""Dataset spec loader: the real manifests and the world's specs load; malformed specs are rejected by field."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from pipelines.recipes import DATASETS
from pipelines.spec import MANIFEST_DIR, SpecError, load_spec, parse_spec
from pipelines.synth.specs import spec_to_toml

GOOD = (MANIFEST_DIR / "yt-music.toml").read_text()


@pytest.mark.parametrize("dataset", DATASETS)
def test_real_manifests_load(dataset):
    spec = load_spec(dataset=dataset)
    assert spec.name == dataset
    assert spec.lists and spec.protocols
    for lf in spec.lists:
        assert lf.url.startswith("https://raw.githubusercontent.com/")
        assert len(lf.sha256) == 64
    if spec.source == "youtube":
        assert spec.media_url_for("abcdefghijk") == "https://www.youtube.com/watch?v=abcdefghijk"
    else:
        assert {a.contents for a in spec.archives} == {"videos", "audios", "splits"}


def test_music_stereo_keeps_the_paper_threshold():
    assert load_spec(dataset="music-stereo").min_lr_diff == pytest.approx(0.001)


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "spec.toml"
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    "old, new, field",
    [
        ('name = "yt-music"', 'name = "yt-musik"', "'name'"),
        ('audio = "ambix"', 'audio = 4', "'audio'"),
        ('media_url = "https://www.youtube.com/watch?v={id}"', 'media_url = "https://www.youtube.com/watch"', "'media_url'"),
        ('sha256 = "c19aecc98e06a2fdc5de17c1406f5acfd1b79ee4454d7a2274e6859b3540b726"', 'sha256 = "c19a"', "'lists[0].sha256'"),
        ('path = "meta/subsets/YT-Music.lst"', 'path = "../../etc/passwd"', "'lists[0].path'"),
        ('format = "id-lines"\nrole = "ids"', 'format = "csv"\nrole = "ids"', "'lists[0].format'"),
        ('part = "train"', 'part = "dev"', "'lists[1].part'"),
        ('kind = "lists"', 'kind = "random"', "'protocols[0].kind'"),
        ('val_from = "train"', 'val_from = "val"', "'protocols[0].val_from'"),
        ('val_fraction = 0.1', 'val_fraction = 1.5', "'protocols[0].val_fraction'"),
        ('url = "https://raw.githubusercontent.com/pedro-morgado/spatialaudiogen/a3e8ad1a6bfd78c51a8a073cd00f9d80387e164e/meta/subsets/YT-Music.lst"',
         'url = "ftp://example.com/x"', "'lists[0].url'"),
    ],
)
def test_malformed_spec_names_the_field(tmp_path, old, new, field):
    assert old in GOOD, old
    path = _write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert field in str(err.value)
    assert str(path) in str(err.value)


def test_missing_required_field_is_named(tmp_path):
    path = _write(tmp_path, GOOD.replace('id_format = "youtube"\n', ""))
    with pytest.raises(SpecError, match="'id_format' is missing"):
        load_spec(path)


def test_not_toml_and_missing_file_are_errors(tmp_path):
    with pytest.raises(SpecError, match="not valid TOML"):
        load_spec(_write(tmp_path, "name = [unclosed"))
    with pytest.raises(SpecError, match="not found"):
        load_spec(tmp_path / "nope.toml")


def test_dataset_mismatch_is_rejected():
    with pytest.raises(SpecError, match="'name'"):
        load_spec(MANIFEST_DIR / "yt-music.toml", dataset="yt-clean")


@pytest.mark.parametrize("dataset", DATASETS)
def test_spec_writer_round_trips_the_real_manifests(dataset):
    spec = load_spec(dataset=dataset)
    again = parse_spec(tomllib.loads(spec_to_toml(spec)))
    assert again.lists == spec.lists and again.archives == spec.archives and again.protocols == spec.protocols
    assert again.media_url == spec.media_url and again.min_lr_diff == spec.min_lr_diff


@pytest.mark.parametrize("dataset", DATASETS)
def test_world_specs_load_and_point_at_the_loopback_server(world_server, dataset):
    from pipelines.io import sha256_file

    spec = load_spec(world_server.spec_path(dataset), dataset=dataset)
    real = load_spec(dataset=dataset)
    assert [lf.path for lf in spec.lists] == [lf.path for lf in real.lists]
    assert spec.protocols == real.protocols
    for lf in spec.lists:
        assert lf.url.startswith(world_server.base_url + "/upstream/")
        rel = lf.url[len(world_server.base_url) + 1 :]
        assert sha256_file(world_server.root / rel) == lf.sha256
    for ar in spec.archives:
        assert ar.sha256 == sha256_file(world_server.root / ar.url[len(world_server.base_url) + 1 :])
    if spec.source == "youtube":
        ext = "mp4" if dataset == "music-stereo" else "mkv"
        assert spec.media_url == f"{world_server.base_url}/media/{{id}}.{ext}"


MUSIC = (MANIFEST_DIR / "music-stereo.toml").read_text()
FAIR = (MANIFEST_DIR / "fair-play.toml").read_text()


@pytest.mark.parametrize(
    "text, old, new, message",
    [
        # b9cde7f ignored unknown and misspelt keys: the filter fell back to its default
        (MUSIC, "min_lr_diff = 0.001", "min_lr_dif = 0.5", "field 'min_lr_dif' is not a key of the spec schema; did "
                                                           "you mean 'min_lr_diff'?"),
        (MUSIC, 'fractions = [0.8, 0.1, 0.1]', 'fraction = [0.8, 0.1, 0.1]', "field 'protocols[0].fraction' is not a key"),
        (GOOD, 'role = "ids"', 'role = "ids"\nsha265 = "x"', "field 'lists[0].sha265' is not a key of the spec schema; did"
                                                           " you mean 'lists[0].sha256'?"),
        (FAIR, 'contents = "videos"', 'contents = "videos"\nmirror = "x"', "field 'archives[0].mirror' is not a key"),
        # b9cde7f let NaN through every numeric check (a mono-as-stereo video was kept)
        (MUSIC, "min_lr_diff = 0.001", "min_lr_diff = nan", "field 'min_lr_diff' must be a finite number, got nan"),
        (MUSIC, "min_lr_diff = 0.001", "min_lr_diff = inf", "field 'min_lr_diff' must be a finite number"),
        (MUSIC, "min_lr_diff = 0.001", "min_lr_diff = 3.0", "field 'min_lr_diff' must be between 0 (filter off) and 2"),
        (MUSIC, 'fractions = [0.8, 0.1, 0.1]', 'fractions = [nan, 0.1, 0.9]', "'protocols[0].fractions' must be a list "
                                                                            "of finite numbers"),
        (MUSIC, "seed = 0", "seed = -1", "field 'protocols[0].seed' must be between 0 and 2**63 - 1, got -1"),
        (GOOD, "val_fraction = 0.1", "val_fraction = nan", "field 'protocols[0].val_fraction' must be a finite number"),
        # b9cde7f's shard wrote split lists outside the data root for a protocol named like this
        (GOOD, 'name = "official"', 'name = "../../../ESCAPED"', "field 'protocols[0].name' must be up to 64 letters"),
        (GOOD, 'splits = ["1"]', 'splits = ["../x"]', "field 'protocols[0].splits[0]' must be up to 64 letters"),
        (GOOD, 'protocol = "official"', 'protocol = "a/b"', "field 'lists[1].protocol' must be up to 64 letters"),
        # b9cde7f: a traceback from str.format / from the file system
        (FAIR, 'pattern = "splits/split{split}/{part}.h5"', 'pattern = "splits/{0}/{split}/{part}.h5"',
         "field 'protocols[0].pattern' must contain {split} and {part} and no other field"),
        (FAIR, 'pattern = "splits/split{split}/{part}.h5"', 'pattern = "splits/split{split}/{part!r}.h5"',
         "no other field"),
        (FAIR, 'pattern = "splits/split{split}/{part}.h5"', 'pattern = "splits/{split}/../../{part}.h5"',
         "field 'protocols[0].pattern' must be a relative path without '..'"),
        (FAIR, 'pattern = "splits/split{split}/{part}.h5"', 'pattern = "splits/split{split}/{part.h5"',
         "field 'protocols[0].pattern' is not a valid pattern"),
        (GOOD, 'path = "meta/subsets/YT-Music.lst"', 'path = "meta/a\\u0000b.lst"', "field 'lists[0].path' must not "
                                                                                  "contain NUL or control characters"),
        (GOOD, 'path = "meta/subsets/YT-Music.lst"', f'path = "meta/{"x" * 300}.lst"', "field 'lists[0].path' is too long"),
    ],
)
def test_hostile_or_misspelt_specs_are_one_error_naming_the_field(tmp_path, text, old, new, message):
    assert old in text, old
    path = _write(tmp_path, text.replace(old, new, 1))
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert message in str(err.value) and str(path) in str(err.value)


def test_unreadable_spec_files_are_spec_errors(tmp_path):
    (tmp_path / "binary.toml").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(SpecError, match="binary.toml: not UTF-8 text"):
        load_spec(tmp_path / "binary.toml")
    (tmp_path / "folder.toml").mkdir()
    with pytest.raises(SpecError, match="folder.toml: cannot read the spec"):
        load_spec(tmp_path / "folder.toml")
