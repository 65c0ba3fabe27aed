"""Fail fast when the environment breaks the project's two install rules:
torch is exactly 2.13.0, and exactly one ONNX Runtime is installed."""
import sys
from importlib import metadata

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
print("torch", torch_version, "|", ", ".join(ort))
if problems:
    sys.exit("environment check failed: " + "; ".join(problems))
