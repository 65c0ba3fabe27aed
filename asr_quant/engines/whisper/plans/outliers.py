"""The encoder MLPs' outlier hidden channels, found on the packaged calibration
speech, for the plans that compute them apart in FP32 (rows, costed). The
decoder's products are blocks in both, which need no split."""
from __future__ import annotations


def encoder_outliers(ctx, report, missing: str) -> dict | None:
    """{"encoder": channels per layer} found on OUTLIER_CLIPS calibration clips
    (recorded in `report`), or None when the speech is missing (`missing` is
    added to the report's reason: the calibration digest in the key says so)."""
    from .. import calibration
    from .config import OUTLIER_CLIPS
    from .recipe import fc2_input_amax, outlier_channels

    if ctx.cfg.fc2 != "split":
        return None
    ctx.say("finding outlier channels")
    try:
        calib = [(ctx.features(a), ctx.prompt(u.text, u.language)[0])
                 for u, a in calibration.calibration_clips(OUTLIER_CLIPS, ctx.cache_dir)]
    except calibration.CalibrationError as exc:
        report.reason += f"no calibration speech ({exc}): {missing}; "
        return None
    found = {"encoder": outlier_channels(fc2_input_amax(ctx.hf_model, calib), ctx.cfg.outlier_channels)["encoder"]}
    report.fc2, report.outlier_clips = "split", len(calib)
    report.outliers = {side: [o.tolist() for o in layers] for side, layers in found.items()}
    return found
