"""``rebuild.frozen_heap``: bulk work skips the objects that existed before it, and collects
young objects rarely."""

import gc

import pytest

from services.reports.rebuild import BULK_GEN0, frozen_heap


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


def test_frozen_heap_collects_young_objects_rarely_until_the_outermost_exit(thawed):
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    try:
        with frozen_heap():
            assert gc.get_threshold() == (BULK_GEN0, 10, 10)
            with frozen_heap():
                pass
            assert gc.get_threshold() == (BULK_GEN0, 10, 10)   # the inner exit restored nothing
        assert gc.get_threshold() == (700, 10, 10)
        with pytest.raises(KeyError), frozen_heap():
            raise KeyError("x")
        assert gc.get_threshold() == (700, 10, 10)
    finally:
        gc.set_threshold(*before)


def test_frozen_heap_keeps_a_higher_threshold_than_its_own(thawed):
    before = gc.get_threshold()
    gc.set_threshold(BULK_GEN0 * 2, 10, 10)
    try:
        with frozen_heap():
            assert gc.get_threshold()[0] == BULK_GEN0 * 2
        assert gc.get_threshold() == (BULK_GEN0 * 2, 10, 10)
    finally:
        gc.set_threshold(*before)
