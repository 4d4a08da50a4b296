"""Which backbone: the comparison on one sample and the same folds, its suggestion rule (on rows whose answer
is known), the CLI line, and the Analyze page's section that carries the suggestion to Train."""

import json

import pytest

from core.analysis import saved_path
from core.analysis.compare import BackboneRow, compare, latest, pareto_front, suggest
from core.backbones.depth import ALL
from core.present.sections import analysis_sections
from tests.helpers import cli, make_color_folders, open_page, text_of

MODELS = ["efficientnet_lite0", "efficientnet_lite0_random"]


def _row(model, accuracy, std, speed, *, pretrained=True, spread=0.05):
    return BackboneRow(
        model=model,
        pretrained=pretrained,
        input_size=224,
        params=1,
        mb=0.1,
        images_per_second=speed,
        engine="tflite",
        best_block="head",
        best_accuracy=accuracy,
        best_std=std,
        last_accuracy=accuracy,
        last_std=std,
        knn_accuracy=accuracy,
        knn_std=std,
        suggested_frozen=ALL,
        speed_low=speed * (1 - spread),
        speed_high=speed * (1 + spread),
    )


def test_the_suggestion_is_the_fastest_within_the_best_ones_spread_and_never_random_weights():
    rows = [_row("a", 0.90, 0.02, 100.0), _row("b", 0.91, 0.02, 40.0), _row("c", 0.95, 0.01, 20.0),
            _row("r", 0.99, 0.0, 500.0, pretrained=False)]
    choice, why = suggest(rows)
    assert choice.model == "c" and "the most accurate" in why and "random weights" in why
    close = [_row("a", 0.94, 0.02, 100.0), _row("b", 0.91, 0.02, 40.0), _row("c", 0.95, 0.02, 20.0)]
    choice, why = suggest(close)
    assert choice.model == "a" and "5.0x as fast as c on this machine" in why and "within the spread" in why
    assert "(100 (95-105) images/s against 20 (19-21) images/s, 3 interleaved timings each)" in why
    noisy = [_row("a", 0.94, 0.02, 30.0, spread=0.3), _row("c", 0.95, 0.02, 20.0, spread=0.3)]
    choice, why = suggest(noisy)  # 21-39 against 14-26 images/s: a difference within the noise decides nothing
    assert choice.model == "c" and "not measurably faster" in why
    assert pareto_front(rows) == ("r",)  # fastest and most accurate: nothing else is on the front
    assert pareto_front(close) == ("a", "c")


@pytest.mark.usefixtures("prepared")
def test_a_comparison_on_one_sample_computes_nothing_twice_and_the_page_trains_with_its_suggestion(tmp_path,
                                                                                          empty_feature_store):
    colours = make_color_folders(tmp_path / "colours", per_class=6)
    stages = []
    first = compare(str(colours), MODELS, per_class=6, progress=lambda stage, done, total: stages.append(stage))
    assert {f"{MODELS[0]}: k-NN", f"{MODELS[1]}: k-NN", "timing each backbone's forward, in turn"} <= set(stages)
    assert stages[-1].startswith("timing")  # the last step names itself too (it sat at "23 of 23")
    lite0, random = first.row(MODELS[0]), first.row(MODELS[1])
    assert lite0.speed_low <= lite0.images_per_second <= lite0.speed_high
    assert lite0.pretrained and not random.pretrained and lite0.engine == "tflite"
    assert lite0.best_accuracy >= lite0.last_accuracy and lite0.last_accuracy > 0.9
    assert lite0.images_per_second > 0 and lite0.params == 3_413_024 and lite0.mb == pytest.approx(13.0, abs=0.1)
    assert first.suggested == MODELS[0] and latest(str(colours)).rows == first.rows
    shown = next(s for s in analysis_sections(str(colours), MODELS[0], ALL) if s.anchor == "backbones")
    assert len(shown.table.rows) == 2 and shown.text.startswith("Suggested: EfficientNet-Lite0") and shown.figures
    stored = {p: p.stat().st_ino for p in empty_feature_store.folder.rglob("*.npy")}
    assert len(stored) == 2 * 18  # 18 images, each through both backbones
    assert compare(str(colours), MODELS, per_class=6).rows == first.rows
    saved_path(str(colours), "compare").unlink()  # the probes again, on vectors from the store alone
    third = compare(str(colours), MODELS, per_class=6)
    assert [r.best_accuracy for r in third.rows] == [r.best_accuracy for r in first.rows]
    assert {p: p.stat().st_ino for p in empty_feature_store.folder.rglob("*.npy")} == stored  # none rewritten

    # The Analyze page on the same sample: its button gives the kept rows, "Train with this" carries the choice.
    at = open_page("analyze", dataset=str(colours), dataset_label="colours", per_class=6)
    at.multiselect(key="compare_models").set_value(MODELS).run()
    next(b for b in at.button if b.label == "Compare backbones").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "**Suggested:** EfficientNet-Lite0" in text_of(at)
    assert any("Pareto front" in chart.proto.spec for chart in at.get("plotly_chart"))
    next(b for b in at.button if b.label == "Train with this").click().run()
    assert not at.exception and at.title[0].value == "Train"
    assert (at.session_state.backbone, at.session_state.frozen_blocks) == (MODELS[0], first.suggested_frozen)


@pytest.mark.usefixtures("prepared")
def test_analyze_models_prints_one_json_line_with_every_backbone(tmp_path):
    """The CLI on a converted backbone alone (no TensorFlow in the process: the page test above covers random
    weights); --models takes commas, spaces and the random_init alias."""
    from core.cli.options import model_list

    assert model_list(["efficientnet_lite0,random_init", "efficientnet_lite1"]) == (
        "efficientnet_lite0", "efficientnet_lite0_random", "efficientnet_lite1")
    colours = make_color_folders(tmp_path / "colours", per_class=6)
    result = cli("analyze", "--data", str(colours), "--per-class", "6", "--models", "efficientnet_lite0")
    assert result.returncode == 0, result.stderr
    line = json.loads(result.stdout.strip().splitlines()[-1])
    assert [b["model"] for b in line["backbones"]] == ["efficientnet_lite0"]
    assert set(line["backbones"][0]) >= {"model", "input_size", "params", "mb", "images_per_second", "best_block",
                                         "best_accuracy", "best_std", "last_accuracy", "last_std", "knn_accuracy"}
    assert line["suggested"]["model"] == "efficientnet_lite0" and line["suggested"]["reason"]
    assert line["backbones"][0]["engine"] == "tflite"
    assert any(text.startswith("efficientnet_lite0: depth") for text in result.stdout.splitlines())
