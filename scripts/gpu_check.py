#!/usr/bin/env python3
"""The GPU side of issue 14's check, run by `scripts/gpu-check run` (on the GPU machine) and
`scripts/gpu-check --rehearse` (here, on the CPU): from an extracted bundle (the release
binary, the installed models with the CUDA build of ONNX Runtime, the public eval designs)
it runs every check in one go and writes OUT/report.json, rewritten after each step so a
run cut short still reports what it measured.

Checks: 1. `models verify --gpu`, `/readyz`'s provider, the GPU process seen by nvidia-smi
during a CUDA run, a CUDA session with the GPU hidden failing clearly; 2. the ISNet matte on
CUDA against the CPU matte on three photos; 3. cutout of a 1024² photo (raw session run and
end to end, warm-up apart) and decomposition of the designs per stage, CPU beside CUDA;
4. decompositions per second through `serve` at inference.concurrency 1, 2 and 4.
Needs numpy and Pillow (both on the GPU machine's Python and here).
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import numpy as np
from PIL import Image

PHOTOS = ["astronaut.png", "chelsea.png", "coffee.png"]
ADMIN_EMAIL = "admin@localhost"
ADMIN_PASSWORD = "gpu-check-admin-password-1"


class Check:
    def __init__(self, args):
        self.args = args
        self.bundle = os.path.abspath(args.bundle)
        self.out = os.path.abspath(args.out)
        self.work = os.path.join(self.out, "work")
        os.makedirs(self.work, exist_ok=True)
        self.exe = os.path.join(self.bundle, "bin", "image-layered")
        self.devices = args.devices.split(",")
        self.main = self.devices[-1]
        self.env = dict(os.environ)
        self.env.update({
            "IMAGE_LAYERED__MODELS__DIR": os.path.join(self.bundle, "models"),
            "IMAGE_LAYERED__MODELS__GPU": "true",
            "IMAGE_LAYERED__MODELS__CUDA_LIBRARIES": "system",
            "IMAGE_LAYERED__MODELS__AUTO_FETCH": "false",
        })
        self.report = {
            "provider": None,
            "device": None,
            "matte_mean_diff": None,
            "cutout_ms": {},
            "decompose_ms": {},
            "decompositions_per_s": {},
            "checks": {},
            "details": {},
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        self.log_file = open(os.path.join(self.out, "log.txt"), "a")

    def log(self, msg):
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        print(line, flush=True)
        self.log_file.write(line + "\n")
        self.log_file.flush()

    def save(self):
        path = os.path.join(self.out, "report.json")
        with open(path + ".tmp", "w") as f:
            json.dump(self.report, f, indent=2, sort_keys=False)
            f.write("\n")
        os.replace(path + ".tmp", path)

    def cli(self, args, env=None, timeout=600):
        """Runs the binary; returns (rc, stdout, stderr)."""
        e = dict(self.env)
        e.update(env or {})
        cmd = [self.exe, *args, "--data-dir", os.path.join(self.work, "data")]
        p = subprocess.run(cmd, env=e, capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stdout, p.stderr

    def step(self, name, fn):
        t = time.perf_counter()
        self.log(f"{name} ...")
        try:
            fn()
        except Exception as e:  # a failed step is reported, and the next one still runs
            self.report["checks"][name] = {"ok": False, "error": f"{type(e).__name__}: {e}"}
            self.log(f"{name} FAILED: {e}")
        self.report["details"].setdefault("step_seconds", {})[name] = round(
            time.perf_counter() - t, 1)
        self.save()

    # ---- 1. the machine, the install, readiness, no silent fallback ----

    def machine(self):
        smi = shutil.which("nvidia-smi")
        if smi:
            q = subprocess.run([smi, "--query-gpu=name,driver_version,memory.total",
                                "--format=csv,noheader"], capture_output=True, text=True)
            if q.returncode == 0 and q.stdout.strip():
                name, driver, mem = [s.strip() for s in q.stdout.splitlines()[0].split(",")]
                self.report["device"] = name
                self.report["details"]["gpu"] = {"name": name, "driver": driver, "memory": mem}
        cpu = "unknown CPU"
        try:
            with open("/proc/cpuinfo") as f:
                for line in f:
                    if line.startswith("model name"):
                        cpu = line.split(":", 1)[1].strip()
                        break
        except OSError:
            pass
        self.report["details"]["cpu"] = {"model": cpu, "cores": os.cpu_count()}
        if self.report["device"] is None:
            self.report["device"] = f"{cpu} ({os.cpu_count()} cores)"
        self.report["details"]["ld_library_path"] = self.env.get("LD_LIBRARY_PATH", "")
        self.report["checks"]["machine"] = {"ok": True, "devices": self.devices}

    def verify(self):
        rc, out, err = self.cli(["models", "verify", "--gpu"])
        text = out + err
        ok = rc == 0 and "onnxruntime-gpu-providers-cuda" in text
        self.report["checks"]["models_verify_gpu"] = {"ok": ok, "rc": rc,
                                                      "output": text.strip().splitlines()[-12:]}

    def readyz(self):
        with Serve(self, {"IMAGE_LAYERED__INFERENCE__DEVICE": self.main}, "readyz") as s:
            body = s.get_json("/readyz")
        provider = body.get("models", {}).get("provider")
        self.report["provider"] = provider
        self.report["checks"]["readyz"] = {"ok": body.get("ready") is True and provider ==
                                           self.main, "body": body}

    def no_fallback(self):
        """`--device cuda` with the GPU hidden must fail, naming CUDA, not run on the CPU."""
        photo = os.path.join(self.args.photos, PHOTOS[0])
        rc, out, err = self.cli(["cutout", photo, "-o", os.path.join(self.work, "hidden.png"),
                                 "--device", "cuda"], env={"CUDA_VISIBLE_DEVICES": ""})
        message = " ".join(line for line in err.strip().splitlines() if "error" in line)
        ok = rc != 0 and "cuda" in message.lower()
        self.report["checks"]["cuda_hidden_fails_clearly"] = {"ok": ok, "rc": rc,
                                                              "message": message}

    # ---- 2. the matte on each device ----

    def matte(self):
        other = "cuda" if "cuda" in self.devices else "auto"
        rows = {}
        for name in PHOTOS:
            photo = os.path.join(self.args.photos, name)
            alphas = []
            for device in ("cpu", other):
                path = os.path.join(self.work, f"matte-{device}-{name}")
                rc, out, err = self.cli(["cutout", photo, "-o", path, "--device", device])
                if rc != 0:
                    raise RuntimeError(f"cutout {name} on {device}: {err.strip()}")
                alphas.append(np.asarray(Image.open(path).convert("RGBA"))[..., 3]
                              .astype(np.float64) / 255.0)
            diff = np.abs(alphas[0] - alphas[1])
            rows[name] = {"mean": float(diff.mean()), "max": float(diff.max()),
                          "over_1pct": float((diff > 0.01).mean())}
        worst = max(r["mean"] for r in rows.values())
        self.report["matte_mean_diff"] = worst
        self.report["checks"]["matte_cpu_vs_" + other] = {"ok": worst < 0.005,
                                                         "photos": rows}

    # ---- 3. timings ----

    def cutout_timing(self):
        src = Image.open(os.path.join(self.args.photos, PHOTOS[0])).convert("RGB")
        big = os.path.join(self.work, "photo-1024.png")
        src.resize((1024, 1024), Image.BICUBIC).save(big)
        for device in self.devices:
            sampler = GpuSampler() if device == "cuda" else None
            e = dict(self.env)
            cmd = [self.exe, "cutout", big, "-o", os.path.join(self.work, f"t-{device}.png"),
                   "--device", device, "--repeat", str(self.args.repeat),
                   "--data-dir", os.path.join(self.work, "data")]
            p = subprocess.Popen(cmd, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True)
            if sampler:
                sampler.start(p.pid)
            out, err = p.communicate(timeout=600)
            if sampler:
                sampler.stop()
            if p.returncode != 0:
                raise RuntimeError(f"cutout --repeat on {device}: {err.strip()}")
            row = json.loads(out.strip().splitlines()[-1])
            self.report["cutout_ms"][device] = {k: row[k] for k in (
                "session_run_ms", "cutout_ms", "load_ms", "warmup_ms", "runs", "width",
                "height", "provider")}
            if sampler:
                seen = sampler.summary()
                self.report["checks"]["cuda_runs_on_gpu"] = {
                    "ok": seen["process_seen"] and row["provider"] == "cuda", **seen}
        self.report["checks"]["cutout_timing"] = {"ok": True}

    def eval_timing(self):
        subset = os.path.join(self.work, "designs")
        if not os.path.isdir(subset):
            os.makedirs(subset)
            names = sorted(os.listdir(self.args.designs))[: self.args.eval_limit]
            for n in names:
                os.symlink(os.path.join(self.args.designs, n), os.path.join(subset, n))
        for device in self.devices:
            rc, out, err = self.cli(["eval", "--dataset", subset, "--json", "--device", device],
                                    timeout=1200)
            if rc != 0:
                raise RuntimeError(f"eval on {device}: {err.strip()[-500:]}")
            v = json.loads(out)
            designs = v["designs"]
            stages, seconds = {}, []
            for d in designs.values():
                seconds.append(d["seconds"])
                for s in d.get("stages", []):
                    stages.setdefault(s["name"], []).append(s["seconds"])
            total = sum(statistics.mean(x) for x in stages.values()) or 1.0
            self.report["decompose_ms"][device] = {
                "mean_ms": 1e3 * statistics.mean(seconds),
                "median_ms": 1e3 * statistics.median(seconds),
                "designs": len(seconds),
                "stages_ms": {k: 1e3 * statistics.mean(x) for k, x in stages.items()},
                "stage_share": {k: statistics.mean(x) / total for k, x in stages.items()},
                "scores": {k: v.get("summary", {}).get(k) for k in (
                    "fg_iou", "bg_l1", "count_err", "recon_psnr")},
            }
        main = self.report["decompose_ms"][self.main]["stage_share"]
        top = sorted(main.items(), key=lambda kv: -kv[1])
        self.report["details"]["bottleneck"] = {"device": self.main,
                                                "stages_by_share": top}
        self.report["checks"]["decompose_timing"] = {"ok": True}

    # ---- 4. throughput through the server ----

    def throughput(self):
        designs = sorted(os.listdir(self.args.designs))
        files = [os.path.join(self.args.designs, designs[i % len(designs)], "composite.png")
                 for i in range(self.args.jobs)]
        plan = [(d, c) for d in self.devices for c in self.args.concurrency
                if d != "cpu" or c in self.args.cpu_concurrency or self.devices == ["cpu"]]
        for device, conc in plan:
            env = {
                "IMAGE_LAYERED__INFERENCE__DEVICE": device,
                "IMAGE_LAYERED__INFERENCE__CONCURRENCY": str(conc),
                "IMAGE_LAYERED__JOBS__WORKERS": str(max(conc * 2, 4)),
                "IMAGE_LAYERED__PLANS__FREE__MAX_QUEUED_JOBS": str(max(64, self.args.jobs)),
            }
            sampler = GpuSampler() if device == "cuda" else None
            with Serve(self, env, f"tp-{device}-{conc}") as s:
                key = s.api_key()
                ids = [s.upload(key, f) for f in files]
                if sampler:
                    sampler.start(s.proc.pid)
                t = time.perf_counter()
                jobs = [s.post_json(f"/api/v1/images/{i}/decompose",
                                    {"layers": "auto", "mode": "peel"}, key)["job_id"]
                        for i in ids]
                s.wait_jobs(key, jobs, timeout=1200)
                wall = time.perf_counter() - t
                if sampler:
                    sampler.stop()
            per_s = self.args.jobs / wall
            self.report["decompositions_per_s"].setdefault(device, {})[str(conc)] = per_s
            self.report["details"].setdefault("throughput", {})[f"{device}-{conc}"] = {
                "jobs": self.args.jobs, "seconds": wall, "workers": max(conc * 2, 4),
                **({"gpu": sampler.summary()} if sampler else {})}
            self.log(f"  {device} concurrency {conc}: {per_s:.2f} decompositions/s")
            self.save()
        self.report["checks"]["throughput"] = {"ok": True}


class GpuSampler:
    """Polls nvidia-smi while a process runs: is it listed as a GPU process, with how much
    memory, and how busy the GPU was."""

    def __init__(self):
        self.samples, self.util, self.pid, self.done = [], [], None, threading.Event()

    def start(self, pid):
        self.pid = pid
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.done.is_set():
            apps = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory",
                                   "--format=csv,noheader,nounits"], capture_output=True,
                                  text=True).stdout
            for line in apps.splitlines():
                parts = [p.strip() for p in line.split(",")]
                if len(parts) == 2 and parts[0] == str(self.pid):
                    self.samples.append(float(parts[1]) if parts[1].isdigit() else 0.0)
            u = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu",
                                "--format=csv,noheader,nounits"], capture_output=True,
                               text=True).stdout.strip()
            if u.split("\n")[0].strip().isdigit():
                self.util.append(int(u.split("\n")[0]))
            self.done.wait(0.25)

    def stop(self):
        self.done.set()
        self.thread.join()

    def summary(self):
        return {
            "process_seen": bool(self.samples),
            "gpu_memory_mib_max": max(self.samples, default=0.0),
            "gpu_util_mean_pct": statistics.mean(self.util) if self.util else None,
            "gpu_util_max_pct": max(self.util, default=None),
        }


class Serve:
    """`image-layered serve` on a free port with its own data dir, for one step."""

    def __init__(self, check, env, name):
        self.check, self.name = check, name
        self.data = os.path.join(check.work, f"serve-{name}")
        shutil.rmtree(self.data, ignore_errors=True)
        self.env = dict(check.env)
        self.env.update(env)
        self.env["IMAGE_LAYERED__BOOTSTRAP__ADMIN_PASSWORD"] = ADMIN_PASSWORD
        self.env["IMAGE_LAYERED__SERVER__DOWNLOADS_PER_MEMBER"] = "64"

    def __enter__(self):
        self.log = open(os.path.join(self.check.work, f"serve-{self.name}.log"), "w")
        self.proc = subprocess.Popen(
            [self.check.exe, "serve", "--listen", "127.0.0.1:0", "--data-dir", self.data],
            env=self.env, stdout=subprocess.PIPE, stderr=self.log, text=True)
        deadline = time.time() + 120
        self.base = None
        while self.base is None:
            line = self.proc.stdout.readline()
            if not line and self.proc.poll() is not None:
                raise RuntimeError(f"serve exited {self.proc.returncode}; see {self.log.name}")
            if " listening on " in line:
                self.base = line.split(" listening on ", 1)[1].strip()
            if time.time() > deadline:
                raise RuntimeError("serve did not start in 120 s")
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()
        while True:
            try:
                if self.request("GET", "/readyz")[0] == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                raise RuntimeError(f"not ready in 120 s; see {self.log.name}")
            time.sleep(0.2)
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()

    def request(self, method, path, body=None, headers=None):
        req = urllib.request.Request(self.base + path, data=body, method=method,
                                     headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return r.status, r.read(), {k.lower(): v for k, v in r.headers.items()}
        except urllib.error.HTTPError as e:
            return e.code, e.read(), {k.lower(): v for k, v in e.headers.items()}

    def get_json(self, path, key=None):
        status, body, _ = self.request("GET", path, headers=auth(key))
        return json.loads(body)

    def post_json(self, path, value, key=None, cookie=None):
        headers = {"Content-Type": "application/json", **auth(key)}
        if cookie:
            headers.update({"Cookie": cookie, "Origin": self.base})
        for _ in range(100):
            status, body, h = self.request("POST", path, json.dumps(value).encode(), headers)
            if status != 429 and status != 503:
                break
            time.sleep(float(h.get("retry-after", "1")))
        if status >= 300:
            raise RuntimeError(f"POST {path}: {status} {body[:300]!r}")
        return json.loads(body) if body else {}

    def api_key(self):
        status, body, h = self.request(
            "POST", "/api/v1/auth/login",
            json.dumps({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}).encode(),
            {"Content-Type": "application/json"})
        if status != 200:
            raise RuntimeError(f"login: {status} {body[:300]!r}")
        cookie = h.get("set-cookie", "").split(";", 1)[0]
        return self.post_json("/api/v1/keys", {"name": "gpu-check"}, cookie=cookie)["key"]

    def upload(self, key, path):
        with open(path, "rb") as f:
            data = f.read()
        for _ in range(100):
            status, body, h = self.request("POST", "/api/v1/images", data,
                                           {"Content-Type": "image/png", **auth(key)})
            if status not in (429, 503):
                break
            time.sleep(float(h.get("retry-after", "1")))
        if status != 201:
            raise RuntimeError(f"upload {path}: {status} {body[:300]!r}")
        return json.loads(body)["id"]

    def wait_jobs(self, key, jobs, timeout):
        deadline = time.time() + timeout
        pending = set(jobs)
        while pending:
            for j in list(pending):
                v = self.get_json(f"/api/v1/jobs/{j}", key)
                if v["state"] == "succeeded":
                    pending.discard(j)
                elif v["state"] in ("failed", "cancelled"):
                    raise RuntimeError(f"job {j} {v['state']}: {v.get('error')}")
            if time.time() > deadline:
                raise RuntimeError(f"{len(pending)} jobs unfinished after {timeout} s")
            time.sleep(0.1)


def auth(key):
    return {"Authorization": f"Bearer {key}"} if key else {}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", required=True, help="the extracted bundle")
    ap.add_argument("--out", required=True, help="where report.json and the logs go")
    ap.add_argument("--photos", required=True, help="folder with the three fixture photos")
    ap.add_argument("--designs", required=True, help="the eval designs (DIR/<id>/...)")
    ap.add_argument("--devices", default="cpu,cuda", help="cpu,cuda on the GPU; cpu here")
    ap.add_argument("--repeat", type=int, default=10, help="timed cutouts per device")
    ap.add_argument("--eval-limit", type=int, default=1000, help="designs in the eval")
    ap.add_argument("--jobs", type=int, default=32, help="decompositions per throughput run")
    ap.add_argument("--concurrency", default="1,2,4")
    ap.add_argument("--cpu-concurrency", default="1", help="of those, the ones run on cpu")
    args = ap.parse_args()
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    args.cpu_concurrency = [int(c) for c in args.cpu_concurrency.split(",")]
    c = Check(args)
    c.step("machine", c.machine)
    c.step("models_verify_gpu", c.verify)
    c.step("readyz", c.readyz)
    c.step("cuda_hidden_fails_clearly", c.no_fallback)
    c.step("matte", c.matte)
    c.step("cutout_timing", c.cutout_timing)
    c.step("decompose_timing", c.eval_timing)
    c.step("throughput", c.throughput)
    c.report["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    c.save()
    failed = [k for k, v in c.report["checks"].items() if not v.get("ok")]
    c.log("all checks passed" if not failed else f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
