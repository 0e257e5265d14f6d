"""Progress bars: one tqdm helper for every long command (keras_deconv.progress)."""

import io

import keras
import numpy as np

from keras_deconv.progress import progress_bar
from keras_deconv.training.callbacks import StageProgress


def test_a_training_stage_shows_one_bar_over_all_its_steps():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    log = io.StringIO()
    model.fit(np.zeros((8, 3)), np.zeros((8, 1)), batch_size=2, epochs=2, verbose=0,
              callbacks=[StageProgress(8, "stage1", stream=log)])
    text = log.getvalue()
    assert "stage1: 100%" in text and "8/8" in text and "loss" in text


def test_bars_stay_off_streams_that_are_not_terminals_unless_asked():
    log = io.StringIO()
    assert list(progress_bar(range(4), total=4, desc="quiet", stream=log)) == [0, 1, 2, 3]
    assert log.getvalue() == ""
    with progress_bar(total=2, desc="asked", stream=log, enabled=True) as bar:
        bar.update(2)
    assert "asked: 100%" in log.getvalue()
