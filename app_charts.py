"""Altair charts the pages share: trends per version with thresholds, shares, intervals, PR curves.

App-only (imported by pages); every function takes a DataFrame from ``faceguard.log.queries``
or a faceguard report and returns an ``alt.Chart``. Versions keep one colour everywhere.
"""

from __future__ import annotations

from typing import Sequence

import altair as alt
import numpy as np
import pandas as pd

# One palette, assigned to versions in sorted order, so a version has the same colour on every chart.
PALETTE = ["#4C78A8", "#F58518", "#54A24B", "#B279A2", "#E45756", "#72B7B2", "#EECA3B", "#9D755D"]
THRESHOLD_COLOR = "#d62728"


def _sized(chart, height: int):
    """Plot area ``height`` px, width fitted to the container; legends and axes come on top
    (Streamlit's default, autosize "fit", squeezes the plot to make room for them)."""
    return chart.properties(height=height, autosize=alt.AutoSizeParams(type="fit-x", contains="padding"))


def _legend() -> alt.Legend:
    return alt.Legend(orient="top", title=None)


def version_color(versions: Sequence[str]) -> alt.Scale:
    domain = sorted(set(versions))
    return alt.Scale(domain=domain, range=[PALETTE[i % len(PALETTE)] for i in range(len(domain))])


def neutral(labels: Sequence[str]) -> alt.Scale:
    """One grey for every label (figures that are not versions, e.g. differences)."""
    return alt.Scale(domain=list(labels), range=["#5b6770"] * max(1, len(labels)))


def _tz_naive(df: pd.DataFrame, col: str = "bucket") -> pd.DataFrame:
    # Vega-Lite shows times in the viewer's zone; naive UTC with a "UTC" axis title is less surprising.
    df = df.copy()
    if col in df and hasattr(df[col].dt, "tz") and df[col].dt.tz is not None:
        df[col] = df[col].dt.tz_convert("UTC").dt.tz_localize(None)
    return df


def threshold_rule(value: float, label: str) -> alt.LayerChart:
    base = alt.Chart(pd.DataFrame({"y": [value], "label": [label]}))
    rule = base.mark_rule(color=THRESHOLD_COLOR, strokeDash=[6, 4], strokeWidth=1.5).encode(y="y:Q")
    text = base.mark_text(align="left", dx=4, dy=-6, color=THRESHOLD_COLOR, fontSize=11).encode(
        y="y:Q", text="label:N", x=alt.value(0))
    return rule + text


def trend(
    df: pd.DataFrame, y: str, *, title: str, fmt: str = ".2f", colors: alt.Scale, n_col: str | None = None,
    threshold: float | None = None, threshold_label: str = "", y_domain: Sequence[float] | None = None,
    height: int = 220,
) -> alt.LayerChart:
    """A line per version over time, points sized by the sample size ``n_col``, and the threshold."""
    data = _tz_naive(df[df[y].notna()]) if len(df) else df
    tooltip = [alt.Tooltip("bucket:T", title="time (UTC)", format="%Y-%m-%d %H:%M"),
               alt.Tooltip("model_version:N", title="version"), alt.Tooltip(f"{y}:Q", title=title, format=fmt)]
    if n_col:
        tooltip.append(alt.Tooltip(f"{n_col}:Q", title="sample size"))
    scale = alt.Scale(domain=list(y_domain), zero=False) if y_domain else alt.Scale(zero=False)
    x = alt.X("bucket:T", title="time (UTC)", axis=alt.Axis(format="%b %d %H:%M", labelAngle=0, tickCount=6))
    base = alt.Chart(data).encode(
        x=x, y=alt.Y(f"{y}:Q", title=title, scale=scale, axis=alt.Axis(format=fmt)),
        color=alt.Color("model_version:N", scale=colors, title="version", legend=_legend()),
        tooltip=tooltip,
    )
    layers = [base.mark_line(strokeWidth=2)]
    sparse = len(data) <= 40 * max(1, data["model_version"].nunique()) if len(data) else True
    if not sparse:
        pass  # a dense line reads better without a dot per bucket (hover the line for tooltips)
    elif n_col:
        layers.append(base.mark_circle(opacity=0.8).encode(size=alt.Size(f"{n_col}:Q", title="sample size",
                                                                          scale=alt.Scale(range=[10, 160]),
                                                                          legend=None)))
    else:
        layers.append(base.mark_circle(size=18, opacity=0.8))
    if threshold is not None:
        layers.append(threshold_rule(threshold, threshold_label))
    return _sized(alt.layer(*layers), height)


def latency(df: pd.DataFrame, *, colors: alt.Scale, threshold: float | None, threshold_label: str = "",
            height: int = 220) -> alt.LayerChart:
    """p50 (solid) and p95 (dashed) per version, with the latency threshold."""
    data = _tz_naive(df)
    long = data.melt(id_vars=["bucket", "model_version"], value_vars=["p50_ms", "p95_ms"], var_name="stat",
                     value_name="ms").dropna()
    long["stat"] = long["stat"].str.replace("_ms", "")
    chart = alt.Chart(long).mark_line(strokeWidth=2).encode(
        x=alt.X("bucket:T", title="time (UTC)", axis=alt.Axis(format="%b %d %H:%M", labelAngle=0, tickCount=6)),
        y=alt.Y("ms:Q", title="latency (ms)"),
        color=alt.Color("model_version:N", scale=colors, title="version", legend=_legend()),
        strokeDash=alt.StrokeDash("stat:N", title="", scale=alt.Scale(domain=["p50", "p95"], range=[[1, 0], [5, 3]]),
                                  legend=_legend()),
        tooltip=[alt.Tooltip("bucket:T", title="time (UTC)", format="%Y-%m-%d %H:%M"), "model_version:N", "stat:N",
                 alt.Tooltip("ms:Q", format=".1f")],
    )
    layers = [chart]
    if threshold is not None:
        layers.append(threshold_rule(threshold, threshold_label))
    return _sized(alt.layer(*layers), height)


def share(df: pd.DataFrame, *, colors: alt.Scale, height: int = 180) -> alt.Chart:
    """Each version's share of the served traffic, stacked to 100 %."""
    data = _tz_naive(df[df["share"].notna()])
    chart = alt.Chart(data).mark_area(opacity=0.85, interpolate="step-after").encode(
        x=alt.X("bucket:T", title="time (UTC)", axis=alt.Axis(format="%b %d %H:%M", labelAngle=0, tickCount=6)),
        y=alt.Y("share:Q", title="share of traffic", stack="normalize", axis=alt.Axis(format="%")),
        color=alt.Color("model_version:N", scale=colors, title="version", legend=_legend()),
        tooltip=[alt.Tooltip("bucket:T", title="time (UTC)", format="%Y-%m-%d %H:%M"), "model_version:N",
                 alt.Tooltip("share:Q", format=".1%"), alt.Tooltip("images:Q", title="images")],
    )
    return _sized(chart, height)


def intervals(rows: pd.DataFrame, *, value: str, low: str, high: str, title: str, fmt: str, colors: alt.Scale,
              threshold: float | None = None, threshold_label: str = "") -> alt.LayerChart:
    """One point with its interval per version (rows: model_version, value, low, high, n)."""
    base = alt.Chart(rows).encode(
        y=alt.Y("model_version:N", title=None, sort=None),
        color=alt.Color("model_version:N", scale=colors, legend=None),
        tooltip=["model_version:N", alt.Tooltip(f"{value}:Q", title=title, format=fmt),
                 alt.Tooltip(f"{low}:Q", title="low", format=fmt), alt.Tooltip(f"{high}:Q", title="high", format=fmt),
                 alt.Tooltip("n:Q", title="sample size")],
    )
    layers = [
        base.mark_rule(strokeWidth=3).encode(x=alt.X(f"{low}:Q", title=title, scale=alt.Scale(zero=False),
                                                      axis=alt.Axis(format=fmt)), x2=f"{high}:Q"),
        base.mark_point(filled=True, size=90).encode(x=f"{value}:Q"),
    ]
    if threshold is not None:
        rule = alt.Chart(pd.DataFrame({"x": [threshold], "label": [threshold_label]}))
        layers.append(rule.mark_rule(color=THRESHOLD_COLOR, strokeDash=[6, 4]).encode(x="x:Q"))
    return _sized(alt.layer(*layers), 30 + 34 * len(rows)).properties(title=title)


def pr_curve(points: pd.DataFrame, *, colors: alt.Scale, operating: pd.DataFrame | None = None,
             height: int = 300) -> alt.LayerChart:
    """Precision-recall curves (columns model_version, recall, precision, threshold), zoomed to
    the part of [0, 1] the curves use."""
    lo = float(min(points["recall"].min(), points["precision"].min()))
    domain = [max(0.0, np.floor(lo * 10) / 10), 1.0]
    line = alt.Chart(points).mark_line(strokeWidth=2, clip=True).encode(
        x=alt.X("recall:Q", scale=alt.Scale(domain=domain), axis=alt.Axis(format=".0%")),
        y=alt.Y("precision:Q", scale=alt.Scale(domain=domain), axis=alt.Axis(format=".0%")),
        color=alt.Color("model_version:N", scale=colors, title="version", legend=_legend()),
        order="recall:Q",
        tooltip=["model_version:N", alt.Tooltip("recall:Q", format=".3f"), alt.Tooltip("precision:Q", format=".3f"),
                 alt.Tooltip("threshold:Q", title="score threshold", format=".2f")],
    )
    layers = [line]
    if operating is not None and len(operating):
        layers.append(alt.Chart(operating).mark_point(filled=True, size=110, shape="diamond").encode(
            x="recall:Q", y="precision:Q", color=alt.Color("model_version:N", scale=colors),
            tooltip=["model_version:N", alt.Tooltip("recall:Q", format=".3f"),
                     alt.Tooltip("precision:Q", format=".3f"), alt.Tooltip("threshold:Q", format=".2f")]))
    return _sized(alt.layer(*layers), height)


def resources(df: pd.DataFrame, y: str, title: str, height: int = 180) -> alt.Chart:
    """CPU % or memory per process over the last minutes."""
    data = _tz_naive(df, "ts")
    data["process"] = data["source"].astype(str) + " · pid " + data["pid"].astype(str)
    chart = alt.Chart(data).mark_line().encode(
        x=alt.X("ts:T", title="time (UTC)", axis=alt.Axis(format="%H:%M", labelAngle=0)),
        y=alt.Y(f"{y}:Q", title=title),
        color=alt.Color("process:N", title="", legend=_legend()),
        tooltip=[alt.Tooltip("ts:T", format="%H:%M:%S"), "process:N", alt.Tooltip(f"{y}:Q", format=".1f")],
    )
    return _sized(chart, height)
