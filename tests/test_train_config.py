"""The learning-rate schedules, the recipes and how the command line layers over them."""

from __future__ import annotations

import argparse
import math

import pytest

from archc.train.config import RECIPES, Config, Schedule
from archc.train.options import add_commands, config_of


def schedule(**options) -> Schedule:
    return Schedule(Config("x.arch", lr=0.1, epochs=10, **options))


def test_step_exp_multistep_and_cosine():
    assert [schedule(schedule="step", step_size=4, gamma=0.5).lr(e) for e in (0, 3.9, 4, 8)] \
        == pytest.approx([0.1, 0.1, 0.05, 0.025])
    assert schedule(schedule="exp", gamma=0.9).lr(2) == pytest.approx(0.1 * 0.81)
    multi = schedule(schedule="multistep", milestones=(0.5, 8), gamma=0.1)
    assert [multi.lr(e) for e in (4.9, 5, 8)] == pytest.approx([0.1, 0.01, 0.001])
    cosine = schedule(schedule="cosine")
    assert [cosine.lr(e) for e in (0, 5, 10)] == pytest.approx([0.1, 0.05, 0.0])


def test_warmup_rises_linearly_then_hands_over():
    warm = schedule(schedule="constant", warmup=2)
    assert [warm.lr(e) for e in (0.5, 1, 2, 3)] == pytest.approx([0.025, 0.05, 0.1, 0.1])


def test_plateau_decays_after_patience_epochs_without_progress_and_keeps_its_state():
    plateau = schedule(schedule="plateau", patience=1, gamma=0.1)
    for error in (0.5, 0.4, 0.4, 0.41):  # better, better, then two without progress
        plateau.observe(error)
    assert plateau.lr(4) == pytest.approx(0.01)
    again = schedule(schedule="plateau", patience=1, gamma=0.1)
    again.load(plateau.state())
    assert again.lr(4) == pytest.approx(0.01) and again.best == 0.4


def test_googlenets_recipe_takes_four_percent_off_every_eight_epochs():
    values = RECIPES["googlenet"][1]
    googlenet = Schedule(Config("x.arch", **values))
    assert googlenet.lr(16) == pytest.approx(values["lr"] * 0.96 ** 2)
    assert "Polyak" in RECIPES["googlenet"][0] and values["ema"] > 0


def parse(*argv):
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(), None, None)
    return parser.parse_args(["train", *argv])


def test_the_command_line_overrides_the_recipe_which_overrides_the_defaults():
    config = config_of(parse("net.arch", "--recipe", "nin", "--lr", "0.02"))
    assert config.lr == 0.02  # given
    assert config.batch_size == 128 and config.bias_lr_mult == 2 and not config.bias_decay
    assert config.milestones == (5 / 6,) and config.recipe == "nin"
    plain = config_of(parse("net.arch"))
    assert plain.lr == Config("x").lr and plain.schedule == "cosine" and plain.recipe == ""
    assert config_of(parse("net.arch", "--scale-crop", "0.2,1")).scale_crop == (0.2, 1.0)
    assert math.isclose(config_of(parse("net.arch", "--milestones", "30,60")).milestones[1], 60)


def test_recipes_are_cited_in_the_help(capsys):
    with pytest.raises(SystemExit):
        parse("--help")
    text = capsys.readouterr().out
    assert "Lin et al. 2013" in text and "Szegedy et al. 2014" in text
    assert "Simonyan and Zisserman 2014" in text and "torchrun --nproc_per_node=2" in text


def test_each_net_gets_its_own_run_folder_by_default():
    assert config_of(parse("nets/resnet_digits.arch")).out == "runs/resnet_digits"
    assert config_of(parse("nets/resnet_digits.arch", "--out", "x")).out == "x"
