"""Fail fast when the environment breaks the project's install rules: torch
is exactly 2.13.0, exactly one ONNX Runtime is installed, and transformers is
the version requirements.txt pins (a peer's dependencies, e.g. optimum-intel's
transformers<5.6, must not have replaced it: requirements-peers.txt installs
with --no-deps)."""
import re
import sys
from importlib import metadata
from pathlib import Path

problems = []
torch_version = metadata.version("torch")
if not torch_version.startswith("2.13.0"):
    problems.append(f"torch is {torch_version}, expected 2.13.0")
ort = []
for name in ("onnxruntime", "onnxruntime-gpu", "onnxruntime-genai"):
    try:
        ort.append(f"{name}=={metadata.version(name)}")
    except metadata.PackageNotFoundError:
        pass
runtimes = [o for o in ort if not o.startswith("onnxruntime-genai")]
if len(runtimes) != 1:
    problems.append(f"expected exactly one ONNX Runtime, found {runtimes or 'none'}")
pin = re.search(r"^transformers==(\S+)", (Path(__file__).parent.parent / "requirements.txt").read_text(), re.M)
if pin and metadata.version("transformers") != pin.group(1):
    problems.append(f"transformers is {metadata.version('transformers')}, requirements.txt pins {pin.group(1)}")
print("torch", torch_version, "|", ", ".join(ort))
if problems:
    sys.exit("environment check failed: " + "; ".join(problems))
