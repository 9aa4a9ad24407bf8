"""``rebuild.frozen_heap``: bulk work skips the objects that existed before it."""

import gc

import pytest

from services.reports.rebuild import frozen_heap


@pytest.fixture
def thawed():
    frozen = gc.get_freeze_count()
    gc.unfreeze()
    yield
    if frozen:
        gc.freeze()


def frozen(obj: object) -> bool:
    """Frozen objects are in no generation (the freeze count itself drops as they die)."""
    return not any(o is obj for o in gc.get_objects())


def test_frozen_heap_freezes_once_and_thaws_at_the_outermost_exit(thawed):
    before = [1]
    with frozen_heap():
        assert frozen(before)
        during = [2]
        with frozen_heap():   # nested: no second freeze
            assert not frozen(during)
        assert frozen(before)   # the inner exit did not thaw
    assert not frozen(before)
    assert gc.get_freeze_count() == 0


def test_frozen_heap_thaws_when_the_work_fails(thawed):
    with pytest.raises(KeyError), frozen_heap():
        raise KeyError("x")
    assert gc.get_freeze_count() == 0


def test_frozen_heap_leaves_a_heap_someone_else_froze_frozen(thawed):
    before = [1]
    gc.freeze()
    with frozen_heap():
        during = [2]
    assert frozen(before) and not frozen(during)
    gc.unfreeze()
