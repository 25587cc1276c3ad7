"""Dataset spec loader: the real manifests and the world's specs load; malformed specs are rejected by field."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from pipelines.recipes import DATASETS
from pipelines.spec import MANIFEST_DIR, SpecError, load_spec, parse_spec
from pipelines.synth.world import spec_to_toml

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
