"""Webhook fuzz, short: mutated AdmissionReviews against ``connaisseur serve`` over HTTPS.

``make fuzz`` sends 100,000; the normal suite sends a seeded 2,000 (a few seconds), with a
maximal request (tens of thousands of containers) every 500.
"""

from __future__ import annotations

from pathlib import Path

from tests.fuzz.webhook import run_campaign


def test_mutated_reviews_get_no_5xx_no_wrong_admission_and_bounded_memory(
    tmp_path: Path,
) -> None:
    report = run_campaign(2000, seed=7, out=tmp_path, huge_every=500)
    print(report.summary())
    assert not report.crashed
    assert report.server_errors == []
    assert report.wrong_admissions == []
    # The oracle saw both outcomes, so it judged admissions and not only refusals.
    assert report.admitted > 20
    assert report.denied > 200
    assert report.statuses.get(400, 0) > 200
    assert report.rss_peak_mib - report.rss_start_mib < 300
