"""``ccs-data fetch-weights`` (issue 15): torchvision's ImageNet ResNet-18 into its cache, checked against the hash
its published name promises, resumed after an interruption; offline against weights served on loopback."""

from __future__ import annotations

import hashlib

import pytest
import torch
import torchvision
from click.testing import CliRunner

from ccstereo.blocks import resnet18_trunk
from pipelines.cli import main as cli_main
from pipelines.weights import (
    STAGING_SUFFIX,
    URL_ENV,
    WeightsError,
    WeightsUnreachable,
    cache_dir,
    fetch_weights,
    file_name_of,
    find_cached,
    hash_prefix,
    official_url,
)
from tests.helpers.weights import make_resnet18_file, serving


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """An empty torch home: torchvision's cache is ``<it>/hub/checkpoints``."""
    home = tmp_path / "torch-home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.delenv(URL_ENV, raising=False)
    return home


@pytest.fixture
def served(tmp_path):
    """(base URL, file) of a ResNet-18 state dict served on loopback under torchvision's naming."""
    weights = make_resnet18_file(tmp_path / "upstream")
    with serving(weights.parent) as base:
        yield base, weights


def test_default_is_torchvisions_published_url_and_hash():
    # the published facts (torchvision 0.29): the URL and the hash prefix in its name
    assert official_url() == "https://download.pytorch.org/models/resnet18-f37072fd.pth"
    name = file_name_of(official_url())
    assert name == "resnet18-f37072fd.pth" and hash_prefix(name) == "f37072fd"
    # torch.hub reads the prefix from the name the same way
    assert torch.hub.HASH_REGEX.search(name).group(1) == hash_prefix(name)


def test_fetch_into_torchvisions_cache_and_visual_init_imagenet_finds_it(torch_home, served):
    base, weights = served
    assert cache_dir() == torch_home / "hub" / "checkpoints" and find_cached() is None
    got = fetch_weights(f"{base}/{weights.name}", retry_wait_s=0)
    assert got.action == "downloaded" and got.path == cache_dir() / weights.name
    assert got.path.read_bytes() == weights.read_bytes()
    assert got.sha256 == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert find_cached() == got.path and not list(cache_dir().glob(f"*{STAGING_SUFFIX}*"))
    # what --visual-init imagenet loads is that file
    trunk = resnet18_trunk("imagenet")
    assert torch.equal(trunk[0].weight, torch.load(weights, weights_only=True)["conv1.weight"])
    # torch.hub's own downloader accepts the same file against the same prefix
    torch.hub.download_url_to_file(f"{base}/{weights.name}", str(torch_home / "peer.pth"),
                                   hash_prefix=hash_prefix(weights.name), progress=False)
    # an intact copy is kept: nothing is asked of the server again
    weights.unlink()
    again = fetch_weights(f"{base}/{weights.name}", retry_wait_s=0)
    assert again.action == "already present" and again.sha256 == got.sha256


class Killed(Exception):
    """Stands for the process dying mid-download (nothing below catches it)."""


def test_interrupted_download_resumes(torch_home, served):
    base, weights = served
    data = weights.read_bytes()
    seen = []

    def die_after_a_third(n: int) -> None:
        seen.append(n)
        if sum(seen) >= len(data) // 3:
            raise Killed

    with pytest.raises(Killed):
        fetch_weights(f"{base}/{weights.name}", on_bytes=die_after_a_third, retry_wait_s=0)
    staging_part = cache_dir() / f"{weights.name}{STAGING_SUFFIX}.part"
    kept = staging_part.stat().st_size
    assert 0 < kept < len(data) and find_cached() is None  # no file under the real name yet
    received = []
    got = fetch_weights(f"{base}/{weights.name}", on_bytes=received.append, retry_wait_s=0)
    assert got.resumed_from == kept and sum(received) == len(data) - kept  # only the rest was sent
    assert got.path.read_bytes() == data and not staging_part.exists()


def test_hash_mismatch_is_refused_and_nothing_is_kept(torch_home, served, tmp_path):
    base, weights = served
    wrong = weights.with_name("resnet18-00000000.pth")
    wrong.write_bytes(weights.read_bytes())
    with pytest.raises(WeightsError, match=r"does not start with 00000000.*deleted"):
        fetch_weights(f"{base}/{wrong.name}", retry_wait_s=0)
    assert find_cached() is None and not any(cache_dir().iterdir())
    # a damaged copy in the cache is replaced by a good download
    (cache_dir() / weights.name).write_bytes(b"not the weights")
    got = fetch_weights(f"{base}/{weights.name}", retry_wait_s=0)
    assert got.action == "downloaded" and got.path.read_bytes() == weights.read_bytes()


def test_bad_urls_and_unreachable_servers(torch_home, served):
    base, _ = served
    for url, why in (("ftp://example.org/resnet18-f37072fd.pth", "not an http"),
                     (f"{base}/model.pth", "not named like torchvision's weights"),
                     (f"{base}/../resnet18-f37072fd.pth/x", "not named like")):
        with pytest.raises(WeightsError, match=why):
            fetch_weights(url)
    with pytest.raises(WeightsError, match="404"):
        fetch_weights(f"{base}/resnet18-0123abcd.pth", retry_wait_s=0)
    with serving(torch_home) as closed:  # a port that was just released: nothing listens there any more
        pass
    with pytest.raises(WeightsUnreachable, match="incomplete after 1 attempts"):
        fetch_weights(f"{closed}/resnet18-0123abcd.pth", attempts=1, retry_wait_s=0)


def test_cli_downloads_says_where_and_errors_are_one_line(torch_home, served, monkeypatch):
    base, weights = served
    runner = CliRunner()
    monkeypatch.setenv(URL_ENV, f"{base}/{weights.name}")  # how the README walk-through points it at loopback
    res = runner.invoke(cli_main, ["fetch-weights", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert str(cache_dir() / weights.name) in res.output and "downloaded" in res.output
    assert "--visual-init imagenet" in res.output
    res = runner.invoke(cli_main, ["fetch-weights", "--no-progress"])
    assert res.exit_code == 0 and "already present" in res.output
    bad = weights.with_name("resnet18-ffffffff.pth")
    bad.write_bytes(b"x")
    res = runner.invoke(cli_main, ["fetch-weights", "--no-progress", "--url", f"{base}/{bad.name}"])
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert res.output.strip().splitlines()[-1].startswith("ccs-data fetch-weights: error: ")
    with serving(torch_home) as closed:
        pass
    res = runner.invoke(cli_main, ["fetch-weights", "--no-progress", "--url", f"{closed}/resnet18-0123abcd.pth"])
    assert res.exit_code == 3 and "ccs-data fetch-weights: error:" in res.output


def test_served_stand_in_is_a_resnet18(tmp_path):
    path = make_resnet18_file(tmp_path)
    state = torch.load(path, weights_only=True)
    assert state.keys() == torchvision.models.resnet18(weights=None).state_dict().keys()
    assert hashlib.sha256(path.read_bytes()).hexdigest().startswith(hash_prefix(path.name))
