"""Speech with known text for the benchmark: the built-in corpus and users' folders.

The built-in corpus is synthesized once with espeak-ng (Debian package) and
cached under the cache dir: Mandarin, English, Cantonese, Japanese and Korean,
twenty sentences of 5-15 s per language, and a copy of the Mandarin set with
seeded pink noise mixed at 10 dB SNR (the article's quiet/noisy rows). Synthetic speech measures how far a
precision moves the output, not how well a model hears people: Whisper base
mishears espeak's non-English voices even at FP32. Real recordings come in
through `read_folder` (`--corpus DIR`): audio files with same-named .txt
references, or a manifest.tsv (file, lang, text).
"""
from __future__ import annotations

import csv
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from .. import audio as _audio
from .. import espeak, metrics
from ..cache import build_dir, key_of
from .sentences import sentences

LANGUAGES = ("zh", "en", "yue", "ja", "ko")
# espeak-ng voices. Mandarin uses the pinyin variant of the cmn voice: plain
# `cmn` in espeak-ng 1.51 reads each hanzi's pinyin with its tone digit spoken
# as an English number ("jin one tian one"), which no recognizer can follow.
VOICES = {"zh": "cmn-latn-pinyin", "en": "en-us", "yue": "yue", "ja": "ja", "ko": "ko"}
NOISY_SNR_DB = 10.0
NOISE_SEED = 20260217
MIN_S, MAX_S = 5.0, 15.0
CORPUS_VERSION = 2  # bump when generation changes, so caches are rebuilt
MANIFESTS = ("manifest.tsv", "examples.tsv")  # tab-separated: file, lang, text (or file, language, reference)
AUDIO_EXTS = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".webm", ".aac", ".mp4")
# language codes recognised in folder names and file-name prefixes
KNOWN_LANGUAGES = frozenset(LANGUAGES) | {
    "de", "fr", "es", "it", "pt", "ru", "nl", "pl", "tr", "ar", "hi", "vi", "th", "id", "ms", "uk", "sv",
}
_RATES = (140, 150, 160)  # words per minute, cycled for variety
_PITCHES = (35, 50, 65)


class CorpusError(ValueError):
    """A corpus that cannot be built or read; the message is for people."""


@dataclass(frozen=True)
class Utterance:
    """One clip with its reference text.

    `group` is the results row it counts in, e.g. "zh" (quiet), "zh-noisy",
    "en"; `source` says where it came from ("espeak-ng" or a folder name), and
    rows never mix sources. `recorded` is False for synthetic speech: only
    recorded rows enter the accuracy verdict (bench.paired).
    """

    id: str
    language: str
    group: str
    text: str
    path: str
    source: str
    duration_s: float = 0.0
    recorded: bool = True

    @property
    def row(self) -> str:
        """The table row: group and source, e.g. "zh-noisy (espeak-ng)"."""
        return f"{self.group} ({self.source})"

    def clip(self) -> "_audio.Clip":
        """Decode the audio (any format audio.load reads), with no length cap."""
        return _audio.load(self.path, max_s=None, name=self.id)


@dataclass
class Corpus:
    test: list[Utterance]
    root: str
    notes: list[str]


# --- the built-in corpus -------------------------------------------------------

def espeak_version() -> str:
    try:
        return espeak.version()
    except espeak.EspeakError as exc:
        raise CorpusError(f"{exc}, so the built-in corpus cannot be made: install it or pass --corpus DIR.") from None


def _spoken(language: str, text: str) -> str:
    """espeak-ng's yue dictionary is keyed on traditional characters."""
    if language == "yue":
        import zhconv

        return zhconv.convert(text, "zh-hk")
    return text


def synthesize(language: str, text: str, index: int) -> np.ndarray:
    """One utterance, with rate and pitch varied by index; the rate is
    adjusted once so that the clip lasts 5-15 s (espeak is fast-spoken)."""
    voice = VOICES[language]
    rate, pitch = _RATES[index % len(_RATES)], _PITCHES[(index // len(_RATES)) % len(_PITCHES)]
    y = espeak.synthesize(_spoken(language, text), voice, rate, pitch)
    dur = len(y) / _audio.SAMPLE_RATE
    if dur < MIN_S + 0.5 or dur > MAX_S - 0.5:
        target = 6.0 if dur < MIN_S + 0.5 else 13.0
        rate = int(max(100, min(260, round(rate * dur / target))))
        y = espeak.synthesize(_spoken(language, text), voice, rate, pitch)
    peak = float(np.max(np.abs(y))) if len(y) else 0.0
    return (y * (0.7 / peak)).astype(np.float32) if peak > 0 else y


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """1/f noise (spectrum shaped in the frequency domain), unit power."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    x = np.fft.irfft(spec / np.sqrt(f), n)
    return (x / np.sqrt(np.mean(x ** 2))).astype(np.float32)


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """speech + noise scaled so that 10 log10(P_speech / P_noise) = snr_db,
    powers taken over the whole clip; rescaled only if the sum would clip."""
    ps = float(np.mean(speech.astype(np.float64) ** 2))
    pn = float(np.mean(noise.astype(np.float64) ** 2))
    if ps <= 0 or pn <= 0:
        raise CorpusError("cannot mix at an SNR: speech or noise has no power")
    scaled = noise * np.sqrt(ps / (pn * 10 ** (snr_db / 10.0)))
    y = speech + scaled
    peak = float(np.max(np.abs(y)))
    return (y / peak * 0.95 if peak > 0.99 else y).astype(np.float32)


def snr_db(speech: np.ndarray, mixed: np.ndarray) -> float:
    noise = mixed.astype(np.float64) - speech.astype(np.float64)
    return 10 * np.log10(np.mean(speech.astype(np.float64) ** 2) / np.mean(noise ** 2))


def _builtin_key(version: str) -> str:
    spec = {
        "v": CORPUS_VERSION, "espeak": version, "voices": VOICES, "snr": NOISY_SNR_DB, "seed": NOISE_SEED,
        "rates": _RATES, "pitches": _PITCHES,
        "sentences": {lang: sentences(lang) for lang in LANGUAGES},
    }
    return key_of(spec, 12)


def builtin(cache_dir: str | os.PathLike, progress=None) -> Corpus:
    """The built-in corpus, made on first use and read from the cache after.

    Written to a temporary folder and renamed into place, so two processes
    never see half a corpus.
    """
    version = espeak_version()
    root = Path(cache_dir) / "corpus" / f"builtin-{_builtin_key(version)}"
    build_dir(root, lambda tmp: _generate(tmp, version, progress), valid=lambda f: (f / "manifest.json").exists())
    return _read_manifest(root)


def _generate(out: Path, version: str, progress=None) -> None:
    rows: list[dict] = []
    total = sum(len(sentences(lang)) for lang in LANGUAGES)
    done = 0
    rng = np.random.default_rng(NOISE_SEED)
    for lang in LANGUAGES:
        (out / lang).mkdir()
        for i, (ref, spoken) in enumerate(sentences(lang)):
            uid = f"{lang}-{i:02d}"
            y = synthesize(lang, spoken, i)
            sf.write(out / lang / f"{uid}.wav", y, _audio.SAMPLE_RATE, subtype="FLOAT")
            rows.append(dict(id=uid, language=lang, group=lang, text=ref, path=f"{lang}/{uid}.wav",
                             source="espeak-ng", duration_s=round(len(y) / _audio.SAMPLE_RATE, 3)))
            if lang == "zh":
                (out / "zh-noisy").mkdir(exist_ok=True)
                noisy = mix_at_snr(y, pink_noise(len(y), rng), NOISY_SNR_DB)
                nid = f"zh-noisy-{i:02d}"
                sf.write(out / "zh-noisy" / f"{nid}.wav", noisy, _audio.SAMPLE_RATE, subtype="FLOAT")
                rows.append(dict(id=nid, language="zh", group="zh-noisy", text=ref, path=f"zh-noisy/{nid}.wav",
                                 source="espeak-ng", duration_s=rows[-1]["duration_s"]))
            done += 1
            if progress:
                progress(done, total)
    meta = {"espeak": version, "voices": VOICES, "snr_db": NOISY_SNR_DB, "noise": "pink (1/f), seeded",
            "noise_seed": NOISE_SEED, "version": CORPUS_VERSION, "utterances": rows}
    (out / "manifest.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")


def _read_manifest(root: Path) -> Corpus:
    meta = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    test = [Utterance(id=r["id"], language=r["language"], group=r["group"], text=r["text"],
                      path=str(root / r["path"]), source=r["source"], duration_s=r["duration_s"],
                      recorded=False)
            for r in meta["utterances"]]
    notes = [f"synthesized with {meta['espeak']} (voices {', '.join(f'{k}={v}' for k, v in meta['voices'].items())}); "
             f"zh-noisy = the zh clips with {meta['noise']} noise at {meta['snr_db']:g} dB SNR"]
    return Corpus(test=test, root=str(root), notes=notes)


# --- users' folders ------------------------------------------------------------

def _language_of(rel: Path, language: str | None) -> str | None:
    """From a subfolder named after the language, a file-name prefix
    (`zh_...`, `ja-...`, or the whole stem `ko`), or the --language default."""
    for part in rel.parts[:-1]:
        if part.lower() in KNOWN_LANGUAGES:
            return part.lower()
    stem = rel.stem.lower()
    for sep in ("_", "-", "."):
        head = stem.split(sep, 1)[0]
        if head in KNOWN_LANGUAGES and (head == stem or stem.startswith(head + sep)):
            return head
    return language


def read_folder(folder: str | os.PathLike, language: str | None = None) -> list[Utterance]:
    """Audio files with references: `manifest.tsv` (columns file, lang, text)
    or `examples.tsv` (file, language, reference) when present, else every
    audio file with a same-named .txt beside it."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise CorpusError(f"corpus folder {str(folder)!r} does not exist or is not a folder")
    source = root.resolve().name or "folder"
    out: list[Utterance] = []
    tsv = next((root / n for n in MANIFESTS if (root / n).exists()), None)
    if tsv is not None:
        with tsv.open(encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
                text = row.get("text", row.get("reference"))
                if not row.get("file") or text is None:
                    raise CorpusError(f"{tsv}: each row needs the columns file, lang and text "
                                      "(or file, language, reference)")
                path = root / row["file"]
                if not path.is_file():
                    raise CorpusError(f"{tsv} lists {row['file']!r}, which is not in {root}")
                lang = (row.get("lang") or row.get("language") or "").strip().lower() or _language_of(
                    Path(row["file"]), language)
                out.append(_user_utt(root, path, text.strip(), lang, source))
    else:
        for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTS and p.is_file()):
            ref = path.with_suffix(".txt")
            if not ref.exists():
                continue
            lang = _language_of(path.relative_to(root), language)
            out.append(_user_utt(root, path, ref.read_text(encoding="utf-8").strip(), lang, source))
    if not out:
        raise CorpusError(
            f"no clips with references in {root}: put audio files with same-named .txt files there, "
            "or a manifest.tsv with columns file, lang, text")
    return out


def _user_utt(root: Path, path: Path, text: str, lang: str | None, source: str) -> Utterance:
    rel = path.relative_to(root)
    if not lang:
        raise CorpusError(
            f"can't tell the language of {rel}: put it in a subfolder named after the language "
            "(zh/, en/, ...), start its name with the language (zh_...), or pass --language")
    if not text:
        raise CorpusError(f"the reference text of {rel} is empty")
    if (problem := metrics.reference_problem(text, f"the reference text of {rel}")) is not None:
        raise CorpusError(problem)
    try:
        dur = sf.info(str(path)).duration
    except Exception:  # noqa: BLE001 - compressed formats: duration found when decoded
        dur = 0.0
    uid = str(rel.with_suffix("")).replace(os.sep, "/")
    return Utterance(id=uid, language=lang, group=lang, text=text, path=str(path), source=source,
                     duration_s=round(dur, 3))


# --- selection -----------------------------------------------------------------

def select(utts: list[Utterance], languages: list[str] | None = None, per_row: int | None = None) -> list[Utterance]:
    """Keep the given languages (None = all) and at most `per_row` clips per
    row, in a stable order."""
    keep = [u for u in utts if languages is None or u.language in languages]
    if per_row is None:
        return keep
    seen: dict[str, int] = {}
    out = []
    for u in keep:
        if seen.get(u.row, 0) < per_row:
            out.append(u)
            seen[u.row] = seen.get(u.row, 0) + 1
    return out


def thin(utts: list[Utterance], every: int) -> list[Utterance]:
    """Every `every`-th clip of each row (the 1st, (every+1)-th, ...), in the
    given order: a smaller corpus that still spans each row."""
    if every <= 1:
        return utts
    seen: dict[str, int] = {}
    out = []
    for u in utts:
        if seen.get(u.row, 0) % every == 0:
            out.append(u)
        seen[u.row] = seen.get(u.row, 0) + 1
    return out


def describe(utts: list[Utterance]) -> dict[str, dict]:
    """Per row: clips, total duration, language, source, recorded or synthetic."""
    rows: dict[str, dict] = {}
    for u in utts:
        r = rows.setdefault(u.row, dict(language=u.language, group=u.group, source=u.source, recorded=u.recorded,
                                        clips=0, audio_s=0.0))
        r["clips"] += 1
        r["audio_s"] = round(r["audio_s"] + u.duration_s, 3)
    return rows


def to_dict(u: Utterance) -> dict:
    return asdict(u)
