#!/usr/bin/env python3
"""A local stand-in for the Hugging Face hub (127.0.0.1 only) for the download
tests: the model API (/api/models/ORG/NAME/revision/REV?blobs=true) and file
downloads (/ORG/NAME/resolve/REV/FILE, redirected to /cdn/... like the real hub,
with Range support), plus faults injected on demand:

  401       every request answers 401 (gated model)
  500x2     the first two file requests answer 500 (with an error body)
  403x1     the first file request answers 403 (with an error body), as a
            gated file whose licence is accepted later
  endless   config.json is streamed far past its announced size
  wrongblob config.json is always served with one byte changed (same size)
  drop      the first request of model.safetensors sends half the bytes and closes
  badsha    model.safetensors is always served with one byte flipped
  badsha1   ... only on the first request
  slow      the first file request stalls for 3 s before the body

Several faults may be given comma-separated (500x2,drop).
Prints "PORT <port>" on stdout once listening. Logs one line per request to --log.
"""
import argparse
import hashlib
import http.server
import json
import os
import socket
import threading
import time

ARGS = None
LOCK = threading.Lock()
STATE = {"file_requests": 0, "seen": set()}
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def git_blob_id(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def repo_files(d):
    """(name, size, git blob id, sha256 for LFS files else None) of each file."""
    out = []
    for fname in sorted(os.listdir(d)):
        data = open(os.path.join(d, fname), "rb").read()
        sha = hashlib.sha256(data).hexdigest() if fname.endswith(".safetensors") else None
        out.append((fname, len(data), git_blob_id(data), sha))
    return out


class Hub(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def log(self):
        with LOCK, open(ARGS.log, "a") as f:
            f.write(f"{self.command} {self.path} {self.headers.get('Range', '-')} "
                    f"{'auth' if self.headers.get('Authorization') else 'noauth'}\n")

    def reply(self, code, body=b"", ctype="application/json", headers=None):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def repo_dir(self, org, name):
        return ARGS.repos.get(f"{org}/{name}")

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        self.log()
        if "401" in ARGS.faults:
            return self.reply(401, b'{"error":"Access to model is restricted"}')
        parts = self.path.split("?")[0].strip("/").split("/")
        if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] in ("revision", "tree"):
            d = self.repo_dir(parts[2], parts[3])
            if d is None:
                return self.reply(404, b'{"error":"Repository not found"}')
            files = repo_files(d)
            if parts[4] == "tree":  # huggingface_hub's snapshot_download lists files here
                tree = [{"type": "file", "path": f, "size": size, "oid": blob,
                         **({"lfs": {"oid": sha, "size": size, "pointerSize": 134}} if sha else {})}
                        for f, size, blob, sha in files]
                return self.reply(200, json.dumps(tree).encode())
            siblings = [{"rfilename": f, "size": size, "blobId": blob,
                         **({"lfs": {"sha256": sha, "size": size, "pointerSize": 134}} if sha else {})}
                        for f, size, blob, sha in files]
            siblings.append({"rfilename": "pytorch_model.bin", "size": 10, "blobId": "f" * 40})
            body = json.dumps({"id": f"{parts[2]}/{parts[3]}", "sha": COMMIT, "siblings": siblings}).encode()
            return self.reply(200, body)
        if len(parts) >= 5 and parts[2] == "resolve":
            # As the real hub: small files come straight back with their git blob
            # id as ETag; LFS files redirect to a CDN with X-Linked-Etag (sha256).
            d = self.repo_dir(parts[0], parts[1])
            path = os.path.join(d or "/nonexistent", "/".join(parts[4:]))
            if d is None or not os.path.isfile(path):
                return self.reply(404, b"not found", headers={"X-Error-Code": "EntryNotFound"})
            data = open(path, "rb").read()
            meta = {"X-Repo-Commit": COMMIT}
            if path.endswith(".safetensors"):
                # Absolute URL on another host name, like a CDN: clients must not
                # send the hub token there, and huggingface_hub does not follow it on HEAD.
                cdn = "http://localhost:%d/cdn/" % self.server.server_address[1]
                meta.update({"Location": cdn + "/".join(parts[:2] + parts[4:]),
                             "X-Linked-Etag": '"%s"' % hashlib.sha256(data).hexdigest(),
                             "X-Linked-Size": str(len(data)), "ETag": '"%s"' % git_blob_id(data)})
                return self.reply(302, b"", headers=meta)
            meta["ETag"] = '"%s"' % git_blob_id(data)
            return self.serve_file(parts[-1], data, meta)
        if parts[0] == "cdn" and len(parts) >= 4:
            d = self.repo_dir(parts[1], parts[2])
            path = os.path.join(d or "/nonexistent", "/".join(parts[3:]))
            if d is None or not os.path.isfile(path):
                return self.reply(404, b"not found")
            return self.serve_file(parts[3], open(path, "rb").read())
        return self.reply(404, b"unknown path")

    def serve_file(self, fname, data, extra_headers=None):
        with LOCK:
            STATE["file_requests"] += 1
            n = STATE["file_requests"]
            first_time = fname not in STATE["seen"]
            STATE["seen"].add(fname)
        f = ARGS.faults
        if "500x2" in f and n <= 2:
            return self.reply(500, b"internal error", ctype="text/plain")
        if "403x1" in f and n == 1:
            return self.reply(403, b'{"error":"Access to this file is restricted"}')
        if fname.endswith(".safetensors") and ("badsha" in f or ("badsha1" in f and first_time)):
            data = data[:100] + bytes([data[100] ^ 0xFF]) + data[101:]
        if fname == "config.json" and "wrongblob" in f:
            data = data[:10] + bytes([data[10] ^ 0x01]) + data[11:]
        if fname == "config.json" and "endless" in f:
            return self.serve_endless(data, extra_headers)
        start = 0
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            start = int(rng[6:].split("-")[0])
        body = data[start:]
        self.send_response(206 if start else 200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        for k, v in (extra_headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command == "HEAD":
            return
        if "slow" in f and n == 1:
            time.sleep(3)
        if "drop" in f and fname.endswith(".safetensors") and first_time:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        self.wfile.write(body)

    def serve_endless(self, data, extra_headers):
        """The file, then zeros, far past the announced size (256 MiB claimed)."""
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(1 << 28))
        for k, v in (extra_headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command == "HEAD":
            return
        sent = 0
        chunk = b"\0" * 65536
        try:
            self.wfile.write(data)
            sent = len(data)
            while sent < (1 << 28):
                self.wfile.write(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            with LOCK, open(ARGS.log, "a") as log:
                log.write(f"SENT {sent}\n")
        self.close_connection = True


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--repo", action="append", default=[], help="ORG/NAME=DIR")
    p.add_argument("--fault", default="")
    p.add_argument("--log", required=True)
    ARGS = p.parse_args()
    ARGS.repos = dict(r.split("=", 1) for r in ARGS.repo)
    ARGS.faults = set(x for x in ARGS.fault.split(",") if x)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
