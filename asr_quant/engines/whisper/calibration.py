"""Speech for INT8 calibration and for measuring each INT8 variant against FP32.

Why synthesized: calibration clips must not be test or example clips, and
nothing with a licence we can ship holds real speech in many languages. espeak-ng
speaks ~100 languages; varying voice, speed, pitch, loudness and added noise
spreads the activation ranges the way real input does.

Why shipped: the clips were synthesized once by `scripts/make_calibration_speech.py`
and are packaged as FLAC beside this module (`calibration_speech/`), so an INT8
build is the same on every host: with or without espeak-ng (pip-only installs,
the Docker image, a Space), and whatever espeak-ng version a host has.
`DIGEST` (a hash of the index, which holds every file's sha256) enters the INT8
cache key; if the files are missing the build says so and falls back to
dynamic INT8 under another key, never under the full recipe's.

Two disjoint sets: CALIBRATION (activation ranges for static quantization and
the MLPs' outlier channels, selectable by size) and HOLDOUT (measuring each INT8
variant against FP32). Both cover the seed article's languages (zh, en, yue,
ja, ko) besides European ones. Neither shares a sentence with `examples/`, the
benchmark's corpora or `../shared/speech`.
"""
from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
SPEECH_DIR = Path(__file__).with_name("calibration_speech")
INDEX = SPEECH_DIR / "index.tsv"


class CalibrationError(RuntimeError):
    """Calibration speech is missing or damaged; the message says which."""


@dataclass(frozen=True)
class Utterance:
    voice: str  # espeak-ng voice
    language: str  # Whisper language code, for the hold-out prompt
    text: str


# Interleaved across languages so that any prefix (calib_size=4, 8, ...) is varied.
CALIBRATION: tuple[Utterance, ...] = (
    Utterance("en-us", "en", "The harbour master counted eleven fishing boats before the fog rolled in."),
    Utterance("de", "de", "Der Zug nach Hamburg hat heute leider zwanzig Minuten Verspätung."),
    Utterance("fr-fr", "fr", "Nous avons planté des tomates et des haricots au fond du jardin."),
    Utterance("es", "es", "La biblioteca municipal abre sus puertas a las nueve de la mañana."),
    Utterance("en-gb", "en", "Please remember to water the orchids on the windowsill every Thursday."),
    Utterance("it", "it", "Il museo resterà chiuso per lavori fino alla fine di settembre."),
    Utterance("pt-br", "pt", "O mercado de peixe fica cheio de gente logo cedo aos sábados."),
    Utterance("nl", "nl", "Mijn buurman repareert oude fietsen in zijn garage achter het huis."),
    Utterance("en-us", "en", "A sudden gust of wind scattered the papers across the parking lot."),
    Utterance("ru", "ru", "Вечером мы пили чай и долго разговаривали о путешествиях."),
    Utterance("pl", "pl", "W przyszłym tygodniu odwiedzimy babcię, która mieszka nad morzem."),
    Utterance("ja", "ja", "駅の近くに新しいパン屋ができたので、明日行ってみます。"),
    Utterance("cmn-latn-pinyin", "zh", "我们周末打算去山上看看秋天的红叶。"),
    Utterance("ko", "ko", "오늘 저녁에는 친구들과 함께 영화를 보러 갈 거예요."),
    Utterance("en-gb-x-rp", "en", "Seven hundred and forty two people signed the petition by Monday evening."),
    Utterance("sv", "sv", "Vi cyklade längs sjön och stannade för att äta glass i hamnen."),
    Utterance("tr", "tr", "Kütüphaneden aldığım kitapları yarın geri vermem gerekiyor."),
    Utterance("de", "de", "Könnten Sie mir bitte sagen, wo der nächste Briefkasten ist?"),
    Utterance("fr-fr", "fr", "Le boulanger du quartier prépare des croissants depuis quatre heures du matin."),
    Utterance("es", "es", "Mi hermana estudia ingeniería y quiere trabajar en energías renovables."),
    Utterance("en-us", "en", "The recipe calls for two cups of flour, a pinch of salt and warm milk."),
    Utterance("vi", "vi", "Chúng tôi sẽ đi thăm ông bà vào dịp cuối tuần này."),
    Utterance("id", "id", "Pasar tradisional itu selalu ramai menjelang hari raya."),
    Utterance("en-us", "en", "Did you hear whether the meeting was moved to half past three?"),
    Utterance("it", "it", "Abbiamo camminato per ore lungo la costa senza incontrare nessuno."),
    Utterance("uk", "uk", "Цього літа ми вперше поїхали до Карпат на цілий тиждень."),
    Utterance("cs", "cs", "Na náměstí dnes hraje dechovka a prodávají se tam perníky."),
    Utterance("en-gb", "en", "Quarterly revenue rose by nine percent, mostly thanks to exports."),
    Utterance("fi", "fi", "Talvella järvi jäätyy niin paksuksi, että sillä voi kävellä."),
    Utterance("el", "el", "Το καλοκαίρι πηγαίνουμε συχνά για κολύμπι στη θάλασσα."),
    Utterance("hi", "hi", "कल सुबह हम सब मिलकर पार्क की सफाई करेंगे।"),
    Utterance("en-us", "en", "Turn left after the old stone bridge and follow the river for a mile."),
    Utterance("yue", "yue", "今晚我哋一齊去街市買啲新鮮嘅魚同菜。"),
    Utterance("cmn-latn-pinyin", "zh", "图书馆的新书架上摆满了关于历史和地理的书。"),
    Utterance("ja", "ja", "雨が止んだら、公園まで散歩に行きましょう。"),
    Utterance("ko", "ko", "지하철역 앞에 새로 생긴 카페는 항상 사람이 많아요."),
    Utterance("yue", "yue", "呢間茶樓嘅點心好出名，週末要排好耐隊。"),
)

# The first four (the default hold-out size) span Latin script, Mandarin and Japanese.
HOLDOUT: tuple[Utterance, ...] = (
    Utterance("en-us", "en", "Our neighbours painted their front door a bright shade of yellow last spring."),
    Utterance("cmn-latn-pinyin", "zh", "明天早上八点我们在学校门口集合。"),
    Utterance("es", "es", "El autobús de la línea doce pasa cada quince minutos por la plaza."),
    Utterance("ja", "ja", "この道をまっすぐ行くと、左側に郵便局があります。"),
    Utterance("de", "de", "Am Wochenende backen wir einen Apfelkuchen für die ganze Familie."),
    Utterance("ko", "ko", "내일은 비가 온다고 하니까 우산을 꼭 챙기세요."),
    Utterance("yue", "yue", "我聽日要早啲返公司開會。"),
    Utterance("en-gb", "en", "The committee will announce the winners of the photography contest tomorrow."),
    Utterance("fr-fr", "fr", "Il faut réserver une table si vous voulez dîner sur la terrasse."),
    Utterance("it", "it", "Domani mattina andremo al mercato a comprare frutta e verdura fresca."),
)


def _variant(i: int) -> dict:
    """Deterministic voice/speed/pitch/gain/noise per clip index."""
    rng = np.random.default_rng(1000 + i)
    return {
        "speed": int(rng.integers(135, 190)),
        "pitch": int(rng.integers(25, 75)),
        "gain": float(rng.uniform(0.25, 1.0)),
        "snr_db": float(rng.uniform(12, 30)) if i % 3 == 2 else None,
        "seed": 1000 + i,
    }


def _index() -> dict[tuple[str, int], dict]:
    try:
        with open(INDEX, encoding="utf-8", newline="") as f:
            return {(r["kind"], int(r["i"])): r for r in csv.DictReader(f, delimiter="\t")}
    except (OSError, KeyError, ValueError) as exc:
        raise CalibrationError(f"the packaged calibration speech is missing ({INDEX}: {exc})") from None


def digest() -> str:
    """Part of the INT8 cache key: a hash of the packaged speech as it is on
    disk (the index and the bytes of every file it lists), "none" when the
    index is missing. A missing or damaged clip gives another digest, ending in
    "-degraded", so a build that fell back without it never takes the key of a
    full build, and the full build's key comes back when the files do."""
    try:
        index = INDEX.read_bytes()
        rows = list(_index().values())
    except (OSError, CalibrationError):
        return "none"
    h = hashlib.sha256(index)
    intact = True
    for row in rows:
        try:
            got = hashlib.sha256((SPEECH_DIR / row["file"]).read_bytes()).hexdigest()
        except OSError:
            got = "missing"
        intact = intact and got == row["sha256"]
        h.update(f"{row['file']}={got};".encode())
    return h.hexdigest()[:16] + ("" if intact else "-degraded")


def _clips(kind: str, utts: tuple[Utterance, ...], n: int) -> list[tuple[Utterance, np.ndarray]]:
    import soundfile as sf

    if n > len(utts):
        raise CalibrationError(f"at most {len(utts)} {kind} clips are available, {n} were asked for")
    index = _index()
    out = []
    for i, utt in enumerate(utts[:n]):
        row = index.get((kind, i))
        if row is None or row["text"] != utt.text or row["voice"] != utt.voice:
            raise CalibrationError(f"the packaged calibration speech does not match {kind} clip {i}: "
                                   "run scripts/make_calibration_speech.py")
        path = SPEECH_DIR / row["file"]
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CalibrationError(f"the packaged calibration speech is missing {path.name}: {exc}") from None
        if hashlib.sha256(data).hexdigest() != row["sha256"]:
            raise CalibrationError(f"the packaged calibration clip {path.name} is damaged (sha256 differs)")
        audio, rate = sf.read(path, dtype="float32")
        if rate != SAMPLE_RATE:
            raise CalibrationError(f"{path.name} is {rate} Hz, not {SAMPLE_RATE}")
        out.append((utt, np.ascontiguousarray(audio, dtype=np.float32)))
    return out


def calibration_clips(n: int, cache_dir: str | os.PathLike | None = None) -> list[tuple[Utterance, np.ndarray]]:
    """The first n calibration clips (audio, 16 kHz float32). `cache_dir` is unused (kept for callers)."""
    return _clips("calib", CALIBRATION, n)


def holdout_clips(n: int, cache_dir: str | os.PathLike | None = None) -> list[tuple[Utterance, np.ndarray]]:
    """The first n hold-out clips, never used for calibration."""
    return _clips("holdout", HOLDOUT, n)


def languages(utts: tuple[Utterance, ...], n: int) -> list[str]:
    """The languages of the first n clips of a set, for the artifact manifest."""
    return sorted({u.language for u in utts[:n]})
