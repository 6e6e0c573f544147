"""Which images are flagged and kept for review, and their deletion after retention."""

import os
import time
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from faceguard.config import ReviewSettings
from faceguard.detections import Detections
from faceguard.review import ReviewSampler, purge_expired, review_image_path

IMG = np.zeros((32, 32, 3), np.uint8)
SURE = Detections.from_xywh([[1, 1, 10, 10]], [0.95])
UNSURE = Detections.from_xywh([[1, 1, 10, 10]], [0.30])


def settings_with(fg_env, **review):
    return fg_env.replace(review=ReviewSettings(**review))


def consider(sampler, sha="ab" * 32, dets=SURE, variant="stable", disagreements=0):
    return sampler.consider(image_id="img1", input_sha256=sha, rgb=IMG, detections=dets, threshold=0.25,
                            variant=variant, disagreements=disagreements)


def test_confident_unsampled_image_is_neither_flagged_nor_kept(fg_env):
    s = settings_with(fg_env, sample_rate=0.0, canary_sample_rate=0.0)
    assert consider(ReviewSampler(s)) == (False, None, None)
    assert not s.review_dir.exists()


def test_low_margin_and_disagreement_are_flagged_but_not_kept_when_sampling_off(fg_env):
    s = settings_with(fg_env, sample_rate=0.0, canary_sample_rate=0.0)
    flagged, reason, path = consider(ReviewSampler(s), dets=UNSURE, disagreements=2)
    assert flagged and reason == "shadow_disagreement,low_margin" and path is None
    assert not s.review_dir.exists()


def test_canary_traffic_is_kept_by_default(fg_env):
    s = fg_env  # defaults: canary_sample_rate = 1.0
    flagged, reason, path = consider(ReviewSampler(s), variant="canary")
    assert flagged and "sample" in reason
    kept = review_image_path(s, path)
    assert kept.is_file() and kept.read_bytes()[:2] == b"\xff\xd8"
    assert b"Exif" not in kept.read_bytes()


def test_sampling_is_a_stable_share_of_inputs(fg_env):
    s = settings_with(fg_env, sample_rate=0.2, canary_sample_rate=0.0)
    sampler = ReviewSampler(s)
    import hashlib

    shas = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(2000)]
    picks = [consider(sampler, sha=h)[0] for h in shas[:400]]
    assert 0.13 < sum(picks) / len(picks) < 0.27
    again = [consider(sampler, sha=h)[0] for h in shas[:400]]
    assert picks == again  # the same image always gets the same decision


def test_purge_deletes_after_retention_only(fg_env):
    s = settings_with(fg_env, retention_days=7)
    old = s.review_dir / "2026-01-01" / "old.jpg"
    new = s.review_dir / "2026-12-04" / "new.jpg"
    for f in (old, new):
        f.parent.mkdir(parents=True)
        f.write_bytes(b"\xff\xd8")
    now = datetime.now(timezone.utc)
    ten_days = (now - timedelta(days=10)).timestamp()
    os.utime(old, (ten_days, ten_days))
    assert purge_expired(s, now=now) == 1
    assert not old.exists() and not old.parent.exists() and new.exists()


def test_review_paths_cannot_escape(fg_env):
    with pytest.raises(ValueError):
        review_image_path(fg_env, "../../etc/passwd")
