"""Packaging and build facts: show_config, threads, the ImportError without the compiled module,
and (slow) that `python -m build` makes an sdist whose wheel installs and runs in a fresh venv."""
import io
import os
import pathlib
import shutil
import subprocess
import sys
import venv

import numpy as np
import pytest

import fastcnn
from fastcnn import functional as F

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_show_config_names_every_fact():
    buf = io.StringIO()
    info = fastcnn.show_config(file=buf)
    text = buf.getvalue()
    for key in ("fastcnn", "compiler flags", "openmp", "fastcnn threads", "blas threads",
                "blas library", "simd (cpu)"):
        assert key in info and key in text
    assert info["fastcnn"] == fastcnn.__version__
    assert info["simd (cpu)"] in ("avx512f", "avx2", "sse2", "portable")


def test_set_num_threads_round_trip_and_validation():
    before = fastcnn.get_num_threads()
    try:
        assert fastcnn.set_num_threads(1) == before
        assert fastcnn.get_num_threads() == 1
        with pytest.raises(ValueError, match="n must be >= 1"):
            fastcnn.set_num_threads(0)
        with pytest.raises(TypeError, match="must be an int"):
            fastcnn.set_num_threads(1.5)
        with pytest.raises(TypeError, match="must be an int"):
            fastcnn.set_num_threads(True)
    finally:
        fastcnn.set_num_threads(before)


def test_blas_is_pinned_only_while_kernels_run():
    """The kernels set BLAS to one thread during their region and hand the count back."""
    from fastcnn import _kernels
    before = _kernels.blas_num_threads()
    x = np.ones((4, 2, 8, 8), np.float32)
    w = np.ones((3, 2, 3, 3), np.float32)
    F.conv2d(x, w)
    assert _kernels.blas_num_threads() == before


def test_backend_selection():
    assert F.get_backend() == "fast"
    with F.use_backend("reference"):
        assert F.get_backend() == "reference"
    assert F.get_backend() == "fast"
    with pytest.raises(ValueError, match="must be one of"):
        F.set_backend("gpu")


def test_import_without_compiled_module_says_how_to_build(tmp_path):
    """A copy of the package without its extension must fail loudly, never fall back."""
    pkg = pathlib.Path(fastcnn.__file__).parent
    dst = tmp_path / "fastcnn"
    shutil.copytree(pkg, dst, ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"))
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    # -S: no site-packages, so an editable install cannot redirect the import to the checkout
    proc = subprocess.run([sys.executable, "-S", "-c", "import fastcnn"], cwd=tmp_path, env=env,
                          capture_output=True, text=True)
    assert proc.returncode != 0
    assert "ImportError" in proc.stderr
    assert "pip install" in proc.stderr and "never falls back" in proc.stderr


def test_reference_backend_env_var_is_honoured(tmp_path):
    # cwd outside the checkout: `python -c` puts the cwd first on sys.path, and an unbuilt
    # source tree there would shadow the installed package
    code = "from fastcnn import functional as F; print(F.get_backend())"
    env = dict(os.environ, FASTCNN_BACKEND="reference")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "reference"
    env["FASTCNN_BACKEND"] = "bogus"
    bad = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         cwd=tmp_path)
    assert bad.returncode != 0 and "FASTCNN_BACKEND" in bad.stderr


@pytest.mark.slow
def test_sdist_and_wheel_build_and_install_in_a_fresh_venv(tmp_path):
    pytest.importorskip("build")
    if not (ROOT / "pyproject.toml").exists() or not (ROOT / "csrc").is_dir():
        pytest.skip("not running from a source checkout")
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", ".venv*", "build", "dist", "*.so", "_kernels.c", "__pycache__", ".hypothesis",
        ".benchmarks", "*.egg-info", "runs"))
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "build", "--outdir", str(dist), str(src)], check=True,
                   capture_output=True)
    sdists = list(dist.glob("*.tar.gz"))
    wheels = list(dist.glob("*.whl"))
    assert len(sdists) == 1 and len(wheels) == 1
    import tarfile
    with tarfile.open(sdists[0]) as tar:
        names = tar.getnames()
    assert any(n.endswith("fastcnn/_kernels.pyx") for n in names)
    assert any(n.endswith("csrc/conv.c") for n in names)
    assert not any(n.endswith(".so") for n in names)
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", str(wheels[0])], check=True,
                   capture_output=True)
    code = ("import numpy as np, fastcnn\nfrom fastcnn import functional as F\n"
            "y = F.conv2d(np.ones((1, 1, 4, 4), np.float32), np.ones((1, 1, 3, 3), np.float32))\n"
            "assert y.shape == (1, 1, 2, 2) and float(y[0, 0, 0, 0]) == 9.0\n"
            "print(fastcnn.__version__)")
    out = subprocess.run([str(py), "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == fastcnn.__version__
