"""Build llama.cpp's `llama-server` and the tiny model in GGUF, from llama.cpp's sources on PyPI.

No model hub and no GitHub here: the `llama-cpp-python` sdist vendors llama.cpp's sources
(vendor/llama.cpp, with tools/server and convert_hf_to_gguf.py), so the pinned sdist is
downloaded with pip, the C++ server is built with cmake (about 7 minutes on 2 cores, once: skipped
when the binary exists) and the tiny model (tools/tiny_model.py) is converted to GGUF.

    python tools/llama_server.py             # build/llama.cpp/.../llama-server and build/tiny-model.gguf
    python tools/llama_server.py --is-built  # exit 0 when the server binary is already built

Needs cmake and a C++ compiler; the conversion needs torch, transformers and numpy (the
`llama-server` extra). tools/realserver.py --engine llama-server calls prepare().
"""

import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build"
LLAMA_CPP_PYTHON = "0.3.36"
LLAMA_CPP_COMMIT = "0c1e57098"  # what llama-cpp-python 0.3.36 vendors (its CHANGELOG); the server's system_fingerprint
HOME = BUILD / "llama.cpp"
SOURCES = HOME / f"llama_cpp_python-{LLAMA_CPP_PYTHON}" / "vendor" / "llama.cpp"
CMAKE_DIR = HOME / f"build-{LLAMA_CPP_PYTHON}"
BINARY = CMAKE_DIR / "bin" / "llama-server"
GGUF = BUILD / "tiny-model.gguf"
# Only the server: portable code (GGML_NATIVE=OFF, the machine is shared), no libcurl (no model
# downloads), no tests or examples.
CMAKE_OPTIONS = ("-DLLAMA_BUILD_SERVER=ON", "-DGGML_NATIVE=OFF", "-DLLAMA_CURL=OFF", "-DLLAMA_BUILD_TESTS=OFF",
                 "-DLLAMA_BUILD_EXAMPLES=OFF", "-DCMAKE_BUILD_TYPE=Release",
                 f"-DLLAMA_BUILD_COMMIT={LLAMA_CPP_COMMIT}", "-DLLAMA_BUILD_NUMBER=0")
BUILD_JOBS = "2"

# The tiny model's tokenizer is a byte-level BPE with GPT-2's pre-tokenizer, trained on the spot, so
# the converter (which recognises pre-tokenizers by hashing a known model's output) does not know
# it: tell it it is "gpt-2", which is what it is.
CONVERT = """
import runpy, sys
sources = sys.argv[1]
sys.path[:0] = [sources, sources + "/gguf-py"]
import conversion.base
conversion.base.TextModel.get_vocab_base_pre = lambda self, tokenizer: "gpt-2"
sys.argv = [sources + "/convert_hf_to_gguf.py", *sys.argv[2:]]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def step(what: str, command: list[str], log: Path) -> None:
    started = time.monotonic()
    print(f"llama-server: {what} (log: {log})", flush=True)
    with open(log, "w") as out:
        code = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT).returncode
    if code:
        raise SystemExit(f"llama-server: {what} failed with {code}; see {log}")
    print(f"llama-server: {what}: {time.monotonic() - started:.0f}s", flush=True)


def build_server() -> Path:
    if BINARY.is_file():
        return BINARY
    HOME.mkdir(parents=True, exist_ok=True)
    sdist = HOME / f"llama_cpp_python-{LLAMA_CPP_PYTHON}.tar.gz"
    if not sdist.is_file():
        step(f"pip download llama-cpp-python=={LLAMA_CPP_PYTHON} (sdist)",
             [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
              f"llama-cpp-python=={LLAMA_CPP_PYTHON}", "-d", str(HOME)], HOME / "download.log")
    if not (SOURCES / "CMakeLists.txt").is_file():
        with tarfile.open(sdist) as archive:
            archive.extractall(HOME, filter="data")
    step("cmake configure", ["cmake", "-S", str(SOURCES), "-B", str(CMAKE_DIR), *CMAKE_OPTIONS],
         HOME / "configure.log")
    step("cmake build llama-server", ["cmake", "--build", str(CMAKE_DIR), "--target", "llama-server",
                                      "-j", BUILD_JOBS], HOME / "build.log")
    return BINARY


def convert(model_dir: Path) -> Path:
    """The HF model folder as GGUF (f32: the model is tiny, and no quantisation noise)."""
    if GGUF.is_file() and GGUF.stat().st_mtime >= (model_dir / "model.safetensors").stat().st_mtime:
        return GGUF
    build_server()  # the converter comes with the sources
    step(f"convert {model_dir.name} to GGUF",
         [sys.executable, "-c", CONVERT, str(SOURCES), str(model_dir), "--outfile", str(GGUF), "--outtype", "f32"],
         BUILD / "tiny-model-gguf.log")
    return GGUF


def prepare(model_dir: Path) -> dict[str, str]:
    """What tools/realserver.py fills into llama-server's command line."""
    return {"llama_server": str(build_server()), "gguf": str(convert(model_dir))}


if __name__ == "__main__":
    if sys.argv[1:] == ["--is-built"]:  # .ci/run: run llama-server only when its build is cached
        print(f"llama-server: {'built' if BINARY.is_file() else 'not built'} ({BINARY})")
        sys.exit(0 if BINARY.is_file() else 1)
    sys.path.insert(0, str(ROOT / "tools"))
    from tiny_model import build

    model = BUILD / "tiny-model"
    if not (model / "config.json").is_file():
        build(model, "default")
    for name, path in prepare(model).items():
        print(f"{name}: {path}")
