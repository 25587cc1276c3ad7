"""Upstream list parsers and the video table (pipelines/lists.py).

Fixture lists are written by the tests in the real formats; the real pinned files under
/work/shared/upstream are parsed too when that folder exists (CI may not have it).
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from pipelines.lists import (
    ListFormatError,
    SplitList,
    build_video_table,
    parse_audio_formats,
    parse_clip_lines,
    parse_id_lines,
    parse_music_json,
    parse_video_formats,
    subset_name,
)
from pipelines.recipes import recipe_for
from pipelines.recipes.fair_play import read_h5_list
from pipelines.spec import parse_spec

# shared/ lies beside the checkout (CI: a copy beside the fresh clone); read-only reference copies, never committed
UPSTREAM = next((p for p in (Path(__file__).resolve().parents[2] / "shared" / "upstream", Path("/work/shared/upstream"))
                 if p.is_dir()), Path("/work/shared/upstream"))
needs_upstream = pytest.mark.skipif(not UPSTREAM.is_dir(), reason="real upstream lists not available here")
SHA = "0" * 64  # the table builder reads files already verified by fetch; hashes are not checked here


def _list(path, fmt, role, **kw):
    return {"path": path, "url": f"http://127.0.0.1:1/{path}", "sha256": SHA, "format": fmt, "role": role, **kw}


def yt_spec(name="yt-music", subset="YT-Music"):
    return parse_spec(
        {
            "name": name,
            "source": "youtube",
            "media_url": "http://127.0.0.1:1/media/{id}.mkv",
            "audio": "ambix",
            "id_format": "youtube",
            "lists": [
                _list(f"meta/subsets/{subset}.lst", "id-lines", "ids"),
                _list(f"meta/subsets/{subset}.train.1.lst", "id-lines", "split", protocol="official", split="1",
                      part="train"),
                _list(f"meta/subsets/{subset}.test.1.lst", "id-lines", "split", protocol="official", split="1",
                      part="test"),
                _list("scraping/video_formats.txt", "video-formats", "meta"),
                _list("scraping/audio_formats.txt", "audio-formats", "meta"),
            ],
            "protocols": [{"name": "official", "kind": "lists", "splits": ["1"], "val_from": "test"}],
        }
    )


def music_spec():
    return parse_spec(
        {
            "name": "music-stereo",
            "source": "youtube",
            "media_url": "http://127.0.0.1:1/media/{id}.mp4",
            "audio": "stereo",
            "id_format": "youtube",
            "lists": [
                _list("MUSIC21_solo_videos.json", "music-json", "ids"),
                _list("MUSIC_duet_videos.json", "music-json", "ids"),
            ],
            "protocols": [{"name": "80-10-10", "kind": "random-by-video", "splits": ["1"],
                           "fractions": [0.8, 0.1, 0.1], "seed": 0}],
        }
    )


def fairplay_spec(n_splits=2):
    lists = [
        _list(f"new_splits/split{s}/{part}.txt", "clip-lines", "split", protocol="5-split", split=str(s), part=part)
        for s in range(1, n_splits + 1)
        for part in ("train", "val", "test")
    ]
    return parse_spec(
        {
            "name": "fair-play",
            "source": "archive",
            "audio": "stereo",
            "id_format": "clip6",
            "archives": [{"name": "splits.tar.gz", "url": "http://127.0.0.1:1/splits.tar.gz", "contents": "splits"}],
            "lists": lists,
            "protocols": [
                {"name": "10-split", "kind": "fairplay-h5", "splits": ["1"], "pattern": "splits/split{split}/{part}.h5"},
                {"name": "5-split", "kind": "lists", "splits": [str(s) for s in range(1, n_splits + 1)]},
            ],
        }
    )


def write(root: Path, rel: str, text: str) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")


# --- parsers on fixture text ------------------------------------------------------------------------------------


def test_music_json_gives_id_and_instrument_in_file_order():
    text = json.dumps({"version": 2.0, "videos": {"flute violin": ["8DHG_hVSw1o", "XbOYpwFkn7o"], "tuba": ["AP-vB4w_7Ag"]}})
    assert parse_music_json(text) == [("8DHG_hVSw1o", "flute violin"), ("XbOYpwFkn7o", "flute violin"),
                                      ("AP-vB4w_7Ag", "tuba")]


@pytest.mark.parametrize("bad", ["not json", "[1, 2]", '{"videos": {"tuba": "AP-vB4w_7Ag"}}', '{"videos": [1]}'])
def test_music_json_errors_name_the_file(bad):
    with pytest.raises(ListFormatError, match="solo.json"):
        parse_music_json(bad, "solo.json")


def test_id_lines_tolerate_crlf_blank_lines_and_missing_last_newline():
    assert parse_id_lines("CREpRoomofw\r\n\r\n4rcoX9lon34\r\n1cr_tcBus14") == ["CREpRoomofw", "4rcoX9lon34", "1cr_tcBus14"]
    with pytest.raises(ListFormatError, match=r"x.lst:2"):
        parse_id_lines("CREpRoomofw\nabc def\n", "x.lst")


def test_clip_lines_strip_extension_but_keep_paths_whole():
    assert parse_clip_lines("001325.mp3\n000624.mp3") == ["001325", "000624"]
    # a path is not reduced to its basename: it must fail id validation, not slip through as 000001
    assert parse_clip_lines("../000001.mp3\n") == ["../000001.mp3"]


def test_format_tables_parse_and_reject_bad_lines():
    vf = parse_video_formats("03UPyfDYf4g 313 MONO EAC\n2d-3lo5BVVY 137 STEREO ER\n")
    assert vf["03UPyfDYf4g"].itag == 313 and vf["03UPyfDYf4g"].projection == "EAC"
    assert vf["2d-3lo5BVVY"].stereo_layout == "STEREO" and vf["2d-3lo5BVVY"].projection == "ER"
    af = parse_audio_formats("-076WPWoCRE 338 opus WXYZ\n-d7xDSENKu8 327 aac WXY")
    assert (af["-076WPWoCRE"].itag, af["-076WPWoCRE"].codec, af["-076WPWoCRE"].layout) == (338, "opus", "WXYZ")
    assert af["-d7xDSENKu8"].layout == "WXY"
    with pytest.raises(ListFormatError, match=r"vf.txt:1"):
        parse_video_formats("03UPyfDYf4g 313 MONO CUBE\n", "vf.txt")
    with pytest.raises(ListFormatError, match=r"af.txt:2"):
        parse_audio_formats("-076WPWoCRE 338 opus WXYZ\n-d7xDSENKu8 338 opus\n", "af.txt")
    with pytest.raises(ListFormatError, match="itag"):
        parse_audio_formats("-076WPWoCRE abc opus WXYZ\n")


def test_h5_list_ids_are_basenames(tmp_path):
    path = tmp_path / "train.h5"
    with h5py.File(path, "w") as fh:
        fh.create_dataset("audio", data=np.array([b"/data/FAIR-Play/binaural_audios/000406.wav",
                                                  b"/data/FAIR-Play/binaural_audios/001871.wav"]))
    assert read_h5_list(path) == ["000406", "001871"]
    bad = tmp_path / "bad.h5"
    with h5py.File(bad, "w") as fh:
        fh.create_dataset("video", data=np.array([b"x"]))
    with pytest.raises(ListFormatError, match="no dataset 'audio'"):
        read_h5_list(bad)
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(ListFormatError, match="junk.h5"):
        read_h5_list(tmp_path / "junk.h5")


def test_subset_name():
    assert subset_name("meta/subsets/YT-Music.train.1.lst") == "YT-Music"
    assert subset_name("meta/subsets/YT-Clean.lst") == "YT-Clean"


# --- the video table --------------------------------------------------------------------------------------------


def test_yt_table_rows_follow_the_contract(tmp_path):
    ids = ["CREpRoomofw", "4rcoX9lon34", "1cr_tcBus14"]
    write(tmp_path, "meta/subsets/YT-Music.lst", "\n".join(ids + ["../etc/passwd", "/abs/path", "x" * 5000]))
    write(tmp_path, "meta/subsets/YT-Music.train.1.lst", "CREpRoomofw\n4rcoX9lon34")
    write(tmp_path, "meta/subsets/YT-Music.test.1.lst", "1cr_tcBus14\n")
    write(tmp_path, "scraping/video_formats.txt", "CREpRoomofw 313 MONO EAC\n1cr_tcBus14 266 STEREO ER\nzzzzzzzzzzz 1 MONO ER\n")
    write(tmp_path, "scraping/audio_formats.txt", "CREpRoomofw 338 opus WXYZ\n4rcoX9lon34 327 aac WXY\n")
    table = build_video_table(yt_spec(), tmp_path, list_category=recipe_for("yt-music").list_category)
    assert table.ids == sorted(ids)
    rows = {r["video_id"]: r for r in table.rows}
    assert rows["CREpRoomofw"] == {
        "video_id": "CREpRoomofw",
        "dataset": "yt-music",
        "category": "YT-Music",
        "lists": ["meta/subsets/YT-Music.lst", "meta/subsets/YT-Music.train.1.lst"],
        "splits": {"official/1": ["train"]},
        "upstream_projection": "EAC",
        "stereo_layout": "MONO",
        "video_itag": 313,
        "audio_itag": 338,
        "audio_codec": "opus",
        "audio_layout": "WXYZ",
    }
    assert rows["1cr_tcBus14"]["splits"] == {"official/1": ["test"]}  # the upstream parts; val_from applies at prepare
    assert rows["1cr_tcBus14"]["audio_itag"] is None and rows["1cr_tcBus14"]["upstream_projection"] == "ER"
    assert "zzzzzzzzzzz" not in rows  # meta lists annotate, they do not add ids
    raws = {e.raw for e in table.invalid}
    assert "../etc/passwd" in raws and "/abs/path" in raws
    long = [e for e in table.invalid if e.raw.startswith("xxx")]
    assert len(long) == 1 and len(long[0].raw) < 200 and long[0].source == "meta/subsets/YT-Music.lst"


def test_music_table_categories_and_missing_list(tmp_path):
    write(tmp_path, "MUSIC21_solo_videos.json", json.dumps({"videos": {"tuba": ["AP-vB4w_7Ag", "bad id"]}}))
    with pytest.raises(ListFormatError, match="MUSIC_duet_videos.json"):
        build_video_table(music_spec(), tmp_path)
    write(tmp_path, "MUSIC_duet_videos.json", json.dumps({"videos": {"flute violin": ["8DHG_hVSw1o"]}}))
    table = build_video_table(music_spec(), tmp_path)
    assert [(r["video_id"], r["category"], r["splits"]) for r in table.rows] == [
        ("8DHG_hVSw1o", "flute violin", {}),
        ("AP-vB4w_7Ag", "tuba", {}),
    ]
    assert [e.raw for e in table.invalid] == ["bad id"]


def test_fairplay_table_merges_txt_and_h5_protocols(tmp_path):
    for s in (1, 2):
        write(tmp_path, f"new_splits/split{s}/train.txt", "000001.mp3\n000002.mp3")
        write(tmp_path, f"new_splits/split{s}/val.txt", "000003.mp3\n")
        write(tmp_path, f"new_splits/split{s}/test.txt", "000004.mp3\n../000005.mp3")
    h5 = {("10-split", "1", "train"): ["000001", "000004"], ("10-split", "1", "val"): ["000002"],
          ("10-split", "1", "test"): ["000003", "000006"]}
    table = build_video_table(fairplay_spec(), tmp_path, split_lists=[
        SplitList(protocol, split, part, f"{protocol}/{split}/{part}.h5", ids) for (protocol, split, part), ids in h5.items()])
    assert table.ids == ["000001", "000002", "000003", "000004", "000006"]
    rows = {r["video_id"]: r for r in table.rows}
    assert rows["000001"]["splits"] == {"5-split/1": ["train"], "5-split/2": ["train"], "10-split/1": ["train"]}
    assert rows["000006"]["splits"] == {"10-split/1": ["test"]} and rows["000006"]["lists"] == []
    assert rows["000001"]["category"] is None
    assert [e.raw for e in table.invalid] == ["../000005.mp3"]


# --- the real pinned upstream files (formats only; never copied into the repo) ----------------------------------


@needs_upstream
def test_real_music_lists():
    solo = parse_music_json((UPSTREAM / "MUSIC_dataset/MUSIC21_solo_videos.json").read_text())
    duet = parse_music_json((UPSTREAM / "MUSIC_dataset/MUSIC_duet_videos.json").read_text())
    assert len({i for i, _ in solo}) == 1164 and len({c for _, c in solo}) == 21
    assert len({i for i, _ in duet}) == 149 and len({c for _, c in duet}) == 9
    assert not {i for i, _ in solo} & {i for i, _ in duet}


@needs_upstream
def test_real_spatialaudiogen_lists(tmp_path):
    sag = UPSTREAM / "spatialaudiogen"
    vf = parse_video_formats((sag / "scraping/video_formats.txt").read_text())
    af = parse_audio_formats((sag / "scraping/audio_formats.txt").read_text())
    assert len(vf) == 1152 and len(af) == 1154
    assert vf["2d-3lo5BVVY"].projection == "EAC" and vf["7WRsz_CAP5M"].projection == "EAC"  # upstream issue #13
    assert sum(a.itag == 338 for a in af.values()) == 306
    lowres = parse_video_formats((sag / "scraping/video_formats_lowres.txt").read_text())  # CRLF file
    assert len(lowres) == 1153
    for subset, n, n_train, n_test in (("YT-Music", 397, 298, 99), ("YT-Clean", 496, 372, 124)):
        for rel in (f"meta/subsets/{subset}.lst", f"meta/subsets/{subset}.train.1.lst",
                    f"meta/subsets/{subset}.test.1.lst", "scraping/video_formats.txt", "scraping/audio_formats.txt"):
            write(tmp_path / subset, rel, (sag / rel).read_text())
        table = build_video_table(yt_spec(subset.lower(), subset), tmp_path / subset,
                                  list_category=recipe_for(subset.lower()).list_category)
        assert len(table.rows) == n and not table.invalid
        assert sum(r["splits"].get("official/1") == ["train"] for r in table.rows) == n_train
        assert sum(r["splits"].get("official/1") == ["test"] for r in table.rows) == n_test
        assert all(r["category"] == subset for r in table.rows)


@needs_upstream
def test_real_pseudobinaural_split_lists(tmp_path):
    pb = UPSTREAM / "PseudoBinaural/new_splits"
    tests = set()
    for s in range(1, 6):
        sizes = {part: parse_clip_lines((pb / f"split{s}/{part}.txt").read_text()) for part in ("train", "val", "test")}
        assert {k: len(v) for k, v in sizes.items()} == {"train": 1497, "val": 187, "test": 187}
        tests |= set(sizes["test"])
        for part in ("train", "val", "test"):
            write(tmp_path, f"new_splits/split{s}/{part}.txt", (pb / f"split{s}/{part}.txt").read_text())
    assert len(tests) == 585
    table = build_video_table(fairplay_spec(5), tmp_path)
    assert not table.invalid and len(table.rows) == 1871
    assert table.ids[0] == "000001" and table.ids[-1] == "001871"
    assert all(len(r["splits"]) == 5 for r in table.rows)
