#!/usr/bin/env python3
"""Secret scanning (detect-secrets): every finding in the tracked files must be in the reviewed
baseline `.secrets.baseline` (matched by file and hashed secret, so moved lines do not matter).
A new one fails with its file, line and type.

  scripts/secrets_check.py               check the repository against the baseline
  scripts/secrets_check.py --self-test   prove a Stripe live key and a PEM private key are caught
  scripts/secrets_check.py --update      rewrite the baseline (review the diff before committing)
"""
import json
import subprocess
import sys
import tempfile
from pathlib import Path

EXCLUDE = r"(^|/)target/|Cargo\.lock$|^\.secrets\.baseline$"
BASELINE = Path(".secrets.baseline")


def scan(paths=None, cwd=None):
    command = ["detect-secrets", "scan", "--exclude-files", EXCLUDE]
    if paths:
        command += [str(p) for p in paths]
    out = subprocess.run(command, check=True, capture_output=True, text=True, cwd=cwd).stdout
    return json.loads(out)


def findings(report):
    return {
        (name, item["hashed_secret"]): (item.get("line_number"), item["type"])
        for name, items in report["results"].items()
        for item in items
    }


def check():
    known = findings(json.loads(BASELINE.read_text()))
    current = findings(scan())
    new = {key: where for key, where in current.items() if key not in known}
    for (name, _), (line, kind) in sorted(new.items()):
        print(f"secret scanning: {kind} in {name}:{line} is not in {BASELINE}", file=sys.stderr)
    if new:
        print("review it: remove the secret, or run scripts/secrets_check.py --update if it is a test value",
              file=sys.stderr)
        return 1
    print(f"secret scanning: {len(current)} known findings, nothing new")
    return 0


def self_test():
    live_key = "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"
    pem = "-----BEGIN RSA " + "PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA " + "PRIVATE KEY-----\n"
    with tempfile.TemporaryDirectory() as scratch:
        (Path(scratch) / "config.rs").write_text(f'const STRIPE: &str = "{live_key}";\n')
        (Path(scratch) / "deploy.pem").write_text(pem)
        # Scanned from their own directory: detect-secrets skips files outside the current repo.
        report = scan(["config.rs", "deploy.pem"], cwd=scratch)
        types = {item["type"] for items in report["results"].values() for item in items}
    wanted = {"Stripe Access Key", "Private Key"}
    if not wanted <= types:
        print(f"secret scanning self-test: expected {wanted}, found {types}", file=sys.stderr)
        return 1
    print("secret scanning self-test: a live Stripe key and a PEM private key are caught")
    return 0


def update():
    BASELINE.write_text(json.dumps(scan(), indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    action = {"--self-test": self_test, "--update": update}.get(sys.argv[1] if len(sys.argv) > 1 else "", check)
    sys.exit(action())
