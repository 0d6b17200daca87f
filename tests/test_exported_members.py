"""The public API is what `__all__` says, and every name in it exists."""

from __future__ import annotations

import dbx_promote


def test_all_names_exist_and_are_sorted():
    assert sorted(dbx_promote.__all__) == dbx_promote.__all__
    for name in dbx_promote.__all__:
        assert hasattr(dbx_promote, name), name


def test_every_error_carries_an_exit_code_of_1_or_2():
    from dbx_promote import errors

    classes = [
        c
        for c in vars(errors).values()
        if isinstance(c, type) and issubclass(c, errors.DbxPromoteError)
    ]
    assert len(classes) > 10
    for cls in classes:
        expected = 2 if issubclass(cls, errors.BadInput) else 1
        assert cls.exit_code == expected, cls
