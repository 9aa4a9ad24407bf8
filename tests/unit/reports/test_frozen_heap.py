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


def test_frozen_heap_freezes_once_and_thaws_at_the_outermost_exit(thawed):
    with frozen_heap():
        frozen = gc.get_freeze_count()
        assert frozen > 0
        with frozen_heap():
            assert gc.get_freeze_count() == frozen
        assert gc.get_freeze_count() == frozen
    assert gc.get_freeze_count() == 0


def test_frozen_heap_thaws_when_the_work_fails(thawed):
    with pytest.raises(KeyError), frozen_heap():
        raise KeyError("x")
    assert gc.get_freeze_count() == 0


def test_frozen_heap_leaves_a_heap_someone_else_froze_frozen(thawed):
    gc.freeze()
    frozen = gc.get_freeze_count()
    with frozen_heap():
        pass
    assert gc.get_freeze_count() == frozen
    gc.unfreeze()
