"""The README's Python examples run as written (in a scratch folder), so the docs cannot rot."""
import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _examples():
    if not README.exists():
        return []
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


@pytest.mark.parametrize("index", range(len(_examples())))
def test_readme_example_runs(index, tmp_path, monkeypatch):
    code = _examples()[index]
    if "data.load_dataset" in code:
        pytest.importorskip("sklearn")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"README.md example {index}", "exec"), {"__name__": "readme_example"})


def test_readme_names_the_two_commands():
    text = README.read_text()
    assert 'pip install ".[data,plot]" && fastcnn train' in text
    assert 'pip install ".[test]" && pytest' in text
