"""The installed environment: headless OpenCV only, nothing that needs a display or libGL."""

import importlib.metadata as md
import subprocess
import sys
from pathlib import Path

import cv2


def test_cv2_is_the_headless_build():
    info = cv2.getBuildInformation()
    gui = [line for line in info.splitlines() if line.strip().startswith("GUI:")]
    assert gui and gui[0].split(":", 1)[1].strip() == "NONE", gui
    assert "QT:" not in info and "GTK+:                        YES" not in info


def test_no_gui_opencv_distribution_is_installed():
    names = {d.metadata["Name"].lower() for d in md.distributions()}
    assert "opencv-python-headless" in names
    assert not names & {"opencv-python", "opencv-contrib-python", "opencv-contrib-python-headless"}


def test_cv2_does_not_link_libgl():
    lib = Path(cv2.__file__).parent
    sos = list(lib.glob("cv2*.so")) + list(lib.rglob("cv2*.so"))
    assert sos
    out = subprocess.run(["ldd", str(sos[0])], capture_output=True, text=True).stdout
    assert "libGL.so" not in out and "libgtk" not in out and "libQt" not in out


def test_cv2_imports_with_libgl_unavailable(tmp_path):
    # Shadow libGL with an empty directory on the loader path and a failing stub: if cv2
    # needed it, the import would fail.
    stub = tmp_path / "libGL.so.1"
    stub.write_bytes(b"not a library")
    env = {"LD_LIBRARY_PATH": str(tmp_path), "PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-c", "import cv2; print(cv2.__version__)"], env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_no_network_fetch_in_engine_code():
    import faceguard

    pkg = Path(faceguard.__file__).parent
    suspicious = []
    for p in pkg.rglob("*.py"):
        text = p.read_text()
        for needle in ("urlretrieve", "requests.get", "hf_hub_download", "torch.hub"):
            if needle in text:
                suspicious.append(f"{p.name}: {needle}")
    assert not suspicious, suspicious
