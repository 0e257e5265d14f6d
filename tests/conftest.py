"""Shared fixtures."""

import urllib.error

import pytest


def _no_network(*args, **kwargs):
    raise urllib.error.URLError("network disabled in tests")


@pytest.fixture
def offline_cache(tmp_path, monkeypatch):
    """A private weights cache, and no network: nothing may download in tests."""
    monkeypatch.setenv("KERAS_DECONV_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr("urllib.request.urlopen", _no_network)
    return tmp_path / "cache"
