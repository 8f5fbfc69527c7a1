"""`mood-mirror analyze`: recordings uploaded for analysis, their results awaited and shown."""
import mimetypes
import uuid
from pathlib import Path

from mood_mirror.client import ApiClientError
from mood_mirror.display import err, print_json, print_table, progress_bar
from mood_mirror.errors import EXIT_OK, EXIT_SERVER, CliError, describe_error, one_line

# Errors that concern one uploaded file; any other error stops `analyze` altogether.
PER_FILE_STATUSES = (413, 415, 422)


class UploadBody:
    """A multipart/form-data body with one `file` field, read from disk in blocks as requests
    sends it, so the progress bar follows the bytes actually sent."""

    def __init__(self, path, bar):
        self.boundary = uuid.uuid4().hex
        name = path.name.replace("\\", "_").replace('"', "%22").replace("\r", "").replace("\n", "")
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        head = (f'--{self.boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
                f"Content-Type: {mime}\r\n\r\n").encode()
        tail = f"\r\n--{self.boundary}--\r\n".encode()
        self.size = path.stat().st_size
        self.parts = [head, path, tail]
        self.length = len(head) + self.size + len(tail)
        self.path, self.bar = path, bar
        self.file = None
        self.index = 0

    @property
    def content_type(self):
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self):
        return self.length

    def read(self, size=-1):
        size = 65536 if size is None or size < 0 else size
        while self.index < len(self.parts):
            part = self.parts[self.index]
            if isinstance(part, bytes):
                self.index += 1
                if part:
                    return part
                continue
            if self.file is None:
                self.file = open(part, "rb")
            block = self.file.read(size)
            if block:
                if self.bar is not None:
                    self.bar.update(len(block))
                return block
            self.file.close()
            self.index += 1
        return b""

    def close(self):
        if self.file is not None and not self.file.closed:
            self.file.close()


def upload(args, ctx, client, path):
    ctx.fresh()  # a body sent once cannot be replayed after a token_expired 401
    with progress_bar(args, total=path.stat().st_size, unit="B", unit_scale=True, unit_divisor=1024,
                      desc=f"upload {path.name}"[:40]) as bar:
        body = UploadBody(path, bar)
        try:
            params = {"session_id": args.session} if args.session else None
            return client.json("POST", "/api/analyze", data=body, params=params, retry_on_expiry=False,
                               headers={"Content-Type": body.content_type}, timeout=max(30, args.timeout))
        finally:
            body.close()


def wait(args, client, path, job_id):
    with progress_bar(args, total=100, unit="%", desc=f"analyse {path.name}"[:40],
                      bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}") as bar:
        def on_progress(job):
            bar.n = round(100 * (job.get("progress") or 0))
            bar.refresh()

        return client.wait_for_job(job_id, timeout=args.timeout, poll=0.3, on_progress=on_progress)


def cmd_analyze(args, ctx):
    paths = [Path(p) for p in args.files]
    for path in paths:
        if not path.is_file():
            raise CliError(f"{path}: no such file")
    client = ctx.signed_in()
    accepted, outcomes = [], {}
    for path in paths:  # upload everything first: the workers analyse while the rest uploads
        try:
            accepted.append((path, upload(args, ctx, client, path)["job_id"]))
        except ApiClientError as exc:
            if exc.status not in PER_FILE_STATUSES:
                raise
            outcomes[path] = {"file": str(path), "status": "failed",
                              "error": {"status": exc.status, "code": exc.code, "message": exc.message}}
            err(f"{path}: {describe_error(exc)}")
    for path, job_id in accepted:
        job = wait(args, client, path, job_id)
        outcomes[path] = {"file": str(path), **job}
        if job["status"] == "failed":
            error = job.get("error") or {}
            err(f"{path}: analysis failed: {one_line(error.get('message'))} [{error.get('code')}]")
    results = [outcomes[p] for p in paths]
    if args.json:
        for outcome in results:
            print_json(outcome)
    else:
        print_analysis_table(results)
    return EXIT_OK if all(o["status"] == "finished" for o in results) else EXIT_SERVER


def print_analysis_table(results):
    """One row per file. DOMINANT is the emotion on top in most windows, with its share of them,
    or "mixed" when none is on top in more than half; a failed file keeps every column (a dash)
    and says why in the last one, so the table stays aligned."""
    rows = [("FILE", "DURATION", "WINDOWS", "DOMINANT", "SHARE", "VALENCE", "AROUSAL", "INTENSITY", "NOTE")]
    for outcome in results:
        if outcome["status"] != "finished":
            error = outcome.get("error") or {}
            rows.append((outcome["file"], "-", "-", "failed", "-", "-", "-", "-",
                         f"{one_line(error.get('message'), 70)} [{error.get('code')}]"))
            continue
        result, overall = outcome["result"], outcome["result"]["overall"]
        top = result.get("top") or overall["dominant"]
        share = (result.get("distribution") or {}).get(top)
        note = "uncertain: the average is a guess" if overall.get("uncertain") else ""
        rows.append((outcome["file"], f"{outcome.get('duration_s') or 0:.1f} s",
                     f"{result['windows']} ({result['silent_windows']} silent)",
                     "mixed" if result.get("mixed") else top, "-" if share is None else f"{share:.0%}",
                     f"{overall['valence']:+.2f}", f"{overall['arousal']:+.2f}", f"{overall['intensity']:.2f}", note))
    print_table(rows, right={1, 2, 4, 5, 6, 7})
