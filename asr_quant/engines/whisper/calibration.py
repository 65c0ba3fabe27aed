"""Speech for INT8 calibration and for choosing static vs dynamic, made on the spot.

Why synthesized: calibration clips must not be test or example clips, and
nothing with a licence we can ship holds real speech in many languages. espeak-ng
(a Debian package) speaks ~100 languages; varying voice, speed, pitch, loudness
and added noise spreads the activation ranges the way real input does. Clips are
written once into the cache (atomically) and reused.

Two disjoint sets: CALIBRATION (activation ranges for static quantization,
selectable by size) and HOLDOUT (measuring the error of each INT8 variant
against FP32). Neither shares a sentence with `examples/` or `../shared/speech`.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ... import espeak

SAMPLE_RATE = 16000


class CalibrationError(RuntimeError):
    """Calibration speech could not be made (espeak-ng missing or failing)."""


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
    Utterance("cmn", "zh", "我们周末打算去山上看看秋天的红叶。"),
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
)

HOLDOUT: tuple[Utterance, ...] = (
    Utterance("en-us", "en", "Our neighbours painted their front door a bright shade of yellow last spring."),
    Utterance("de", "de", "Am Wochenende backen wir einen Apfelkuchen für die ganze Familie."),
    Utterance("es", "es", "El autobús de la línea doce pasa cada quince minutos por la plaza."),
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


def synthesize(utt: Utterance, speed: int = 160, pitch: int = 50) -> np.ndarray:
    """espeak-ng -> 16 kHz mono float32."""
    try:
        return espeak.synthesize(utt.text, utt.voice, speed, pitch)
    except espeak.EspeakError as exc:
        raise CalibrationError(f"{exc}; it makes the calibration speech") from None


def _render(utt: Utterance, i: int) -> np.ndarray:
    v = _variant(i)
    audio = synthesize(utt, v["speed"], v["pitch"])
    peak = float(np.max(np.abs(audio))) or 1.0
    audio = audio / peak * v["gain"]
    if v["snr_db"] is not None:
        rng = np.random.default_rng(v["seed"])
        noise = rng.standard_normal(audio.shape).astype(np.float32)
        p_sig = float(np.mean(audio**2)) or 1e-8
        audio = audio + noise * np.sqrt(p_sig / 10 ** (v["snr_db"] / 10))
    return np.clip(audio, -1.0, 1.0).astype(np.float32)


def _clips(kind: str, utts: tuple[Utterance, ...], n: int, cache_dir: str | os.PathLike,
           offset: int = 0) -> list[tuple[Utterance, np.ndarray]]:
    if n > len(utts):
        raise CalibrationError(f"at most {len(utts)} {kind} clips are available, {n} were asked for")
    folder = Path(cache_dir) / "whisper" / "calibration-speech"
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, utt in enumerate(utts[:n]):
        ident = hashlib.sha256(repr((utt, _variant(i + offset))).encode()).hexdigest()[:16]
        path = folder / f"{kind}-{i:02d}-{ident}.npy"
        try:
            audio = np.load(path)
        except (OSError, ValueError):
            audio = _render(utt, i + offset)
            tmp = path.with_name(path.name + f".tmp-{os.getpid()}.npy")
            np.save(tmp, audio)
            os.replace(tmp, path)
        out.append((utt, audio))
    return out


def calibration_clips(n: int, cache_dir: str | os.PathLike) -> list[tuple[Utterance, np.ndarray]]:
    """The first n calibration clips (audio, 16 kHz float32)."""
    return _clips("calib", CALIBRATION, n, cache_dir)


def holdout_clips(n: int, cache_dir: str | os.PathLike) -> list[tuple[Utterance, np.ndarray]]:
    """The first n hold-out clips, never used for calibration."""
    return _clips("holdout", HOLDOUT, n, cache_dir, offset=500)
