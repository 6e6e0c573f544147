import faceguard


def test_all_names_exist_and_are_documented():
    for name in faceguard.__all__:
        obj = getattr(faceguard, name)
        assert obj is not None
        assert (getattr(obj, "__doc__", None) or "").strip(), f"{name} has no docstring"


def test_all_is_sorted_and_unique():
    assert faceguard.__all__ == sorted(set(faceguard.__all__))


def test_engine_package_knows_nothing_of_streamlit():
    import pathlib

    root = pathlib.Path(faceguard.__file__).parent
    offenders = [p.name for p in root.rglob("*.py") if "import streamlit" in p.read_text()]
    assert not offenders
