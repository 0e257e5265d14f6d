"""`keras-deconv train --strategy multiworker`: two worker processes on loopback ports, the chief writes the run."""

import json
import os
import socket
import subprocess
import sys

import pytest
from click.testing import CliRunner

from test_folder_data import CLASSES, make_dataset

#: Seconds a worker may take before the test kills both (a lost peer would otherwise block in a collective).
WORKER_TIMEOUT = 300


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("localhost", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def test_two_workers_train_in_sync_and_only_the_chief_writes_the_run(tmp_path):
    executable = os.path.join(os.path.dirname(sys.executable), "keras-deconv")
    command = [executable] if os.path.exists(executable) else [sys.executable, "-m", "keras_deconv.cli.main"]
    os.makedirs(tmp_path / "data")
    root = make_dataset(tmp_path / "data", size=(48, 64))
    cluster = {"worker": [f"localhost:{port}" for port in _free_ports(2)]}
    workers = []
    for index in range(2):
        scratch = tmp_path / f"tmp{index}"  # the worker's TMPDIR: a non-chief trains into a temporary folder there
        os.makedirs(scratch)
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="", TMPDIR=str(scratch),
                   TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}))
        # Each worker gets its own -o so the test sees who wrote what (on a cluster they share one).
        args = ["train", "fcn8s", "-o", str(tmp_path / f"run{index}"), "--data", "folder", "--data-dir", root,
                "--strategy", "multiworker", "--steps", "2", "--epochs", "1", "--hparam", "batch_size=2", "--quiet"]
        workers.append(subprocess.Popen(command + args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True))
    outputs = []
    try:
        for worker in workers:
            outputs.append(worker.communicate(timeout=WORKER_TIMEOUT))
    except subprocess.TimeoutExpired:
        for worker in workers:
            worker.kill()
            worker.communicate()
        pytest.fail(f"a worker ran past {WORKER_TIMEOUT} s (outputs so far: {outputs})")
    for worker, (out, err) in zip(workers, outputs):
        assert worker.returncode == 0, (out, err[-3000:])

    chief_dir, other_dir = tmp_path / "run0", tmp_path / "run1"
    run = json.loads((chief_dir / "run.json").read_text())
    assert run["replicas"] == 2 and run["strategy"] == "MultiWorkerMirroredStrategy"
    assert run["stages"]["train"]["steps"] == 2
    assert (chief_dir / "card.json").is_file() and (chief_dir / "export" / "folder.weights.h5").is_file()
    assert not other_dir.exists() and os.listdir(tmp_path / "tmp1") == []  # the other worker left nothing
    assert "worker:1: trained 2 steps in sync with the chief" in outputs[1][0]

    from keras_deconv import zoo
    from keras_deconv.cli.main import cli

    assert zoo.load(str(chief_dir)).class_names == list(CLASSES)
    result = CliRunner().invoke(cli, ["evaluate", str(chief_dir), "--data", "folder", "--data-dir", root,
                                      "--json", "-", "--quiet"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["count"] == 2 and 0.0 <= report["metrics"]["mean_iou"] <= 1.0
