"""The runtime alone: a fresh virtualenv with requirements.txt and nothing else (what a
platform installs) holds no training stack, and runs the Procfile's processes (release, web,
worker, cron) through an upload and a live stream. Its install time is measured by
bench.runtime, not here."""
import psutil
import pytest
import redis as redis_lib

from devtools.runtime_venv import TRAINING_ONLY, build
from devtools.stack import Stack
from mood_mirror.client import MoodMirrorClient

from audio_fixtures import encode, speech_like

FORMAT = {"encoding": "s16le", "sample_rate": 16000, "channels": 1}
SIZE_LIMIT_MB = 600

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    venv = tmp_path_factory.mktemp("runtime") / "venv"
    return venv, build(venv)


def loaded_from(process):
    """The virtualenvs whose native extensions (greenlet, numpy, av, LiteRT...) the process
    tree has mapped: the one it runs from."""
    tree = psutil.Process(process.pid)
    paths = {m.path for p in [tree, *tree.children(recursive=True)] for m in p.memory_maps()}
    return {path.split("/lib/python3")[0] for path in paths if "/site-packages/" in path}


def test_runtime_has_no_training_stack_and_fits(runtime):
    _, figures = runtime
    installed = figures["distributions"]
    assert {"flask", "eventlet", "rq", "ai-edge-litert", "av"} <= set(installed)
    assert set(TRAINING_ONLY) & set(installed) == set()
    assert figures["size_mb"] < SIZE_LIMIT_MB, figures["size_mb"]


def test_runtime_runs_the_procfile_through_an_upload_and_a_live_stream(runtime, mongo_uri, redis_url, tmp_path):
    venv, _ = runtime
    redis_lib.Redis.from_url(redis_url).flushdb()
    stack = Stack(mongo_uri.replace("/moodmirror_test", "/moodmirror_lean"), redis_url, tmp_path, workers=1,
                  cron=True, bin_dir=venv / "bin").start()
    try:
        client = MoodMirrorClient(stack.base_url)
        client.register("lean@example.com", "correct horse battery")

        job = client.wait_for_job(client.analyze(encode("wav_s16", 4.0), filename="talk.wav")["job_id"], timeout=90)
        assert job["status"] == "finished", job
        assert job["result"]["windows"] >= 2 and len(job["result"]["timeline"]) == job["result"]["windows"]

        pcm = (speech_like(5.0, 16000)[0] * 32767).astype("int16")
        with client.live_stream() as live:
            live.start(FORMAT, name="lean")
            live.stream_samples(pcm, chunk_ms=100, realtime=True)
            summary = live.stop()
            live.wait_for_emotions(summary["windows"], timeout=60)
        assert summary["windows"] >= 4 and summary["dropped_total"] == 0
        assert sorted(e["window_index"] for e in live.emotions) == list(range(summary["windows"]))
        assert all(e["session_id"] == summary["session_id"] for e in live.emotions)
        for name, process in stack.processes.items():
            assert process.poll() is None, f"{name} exited:\n{stack.log(name)[-2000:]}"
            assert loaded_from(process) == {str(venv)}, f"{name} loads native code from elsewhere"
    finally:
        stack.stop()
