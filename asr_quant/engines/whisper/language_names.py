"""Language names Whisper accepts for its codes ("spanish" -> "es"), without transformers.

A copy of transformers' `models.whisper.tokenization_whisper.TO_LANGUAGE_CODE`
(openai-whisper's LANGUAGES, reversed, plus its aliases), kept here so that a
name given to the INT8 engine never imports transformers; tests/test_whisper.py
checks it still equals the installed transformers' table.
"""

NAME_TO_CODE = {
    "afrikaans": "af", "amharic": "am", "arabic": "ar", "assamese": "as", "azerbaijani": "az", "bashkir": "ba",
    "belarusian": "be", "bulgarian": "bg", "bengali": "bn", "tibetan": "bo", "breton": "br", "bosnian": "bs",
    "catalan": "ca", "valencian": "ca", "czech": "cs", "welsh": "cy", "danish": "da", "german": "de",
    "greek": "el", "english": "en", "castilian": "es", "spanish": "es", "estonian": "et", "basque": "eu",
    "persian": "fa", "finnish": "fi", "faroese": "fo", "french": "fr", "galician": "gl", "gujarati": "gu",
    "hausa": "ha", "hawaiian": "haw", "hebrew": "he", "hindi": "hi", "croatian": "hr", "haitian": "ht",
    "haitian creole": "ht", "hungarian": "hu", "armenian": "hy", "indonesian": "id", "icelandic": "is",
    "italian": "it", "japanese": "ja", "javanese": "jw", "georgian": "ka", "kazakh": "kk", "khmer": "km",
    "kannada": "kn", "korean": "ko", "latin": "la", "letzeburgesch": "lb", "luxembourgish": "lb", "lingala": "ln",
    "lao": "lo", "lithuanian": "lt", "latvian": "lv", "malagasy": "mg", "maori": "mi", "macedonian": "mk",
    "malayalam": "ml", "mongolian": "mn", "marathi": "mr", "malay": "ms", "maltese": "mt", "burmese": "my",
    "myanmar": "my", "nepali": "ne", "dutch": "nl", "flemish": "nl", "nynorsk": "nn", "norwegian": "no",
    "occitan": "oc", "panjabi": "pa", "punjabi": "pa", "polish": "pl", "pashto": "ps", "pushto": "ps",
    "portuguese": "pt", "moldavian": "ro", "moldovan": "ro", "romanian": "ro", "russian": "ru", "sanskrit": "sa",
    "sindhi": "sd", "sinhala": "si", "sinhalese": "si", "slovak": "sk", "slovenian": "sl", "shona": "sn",
    "somali": "so", "albanian": "sq", "serbian": "sr", "sundanese": "su", "swedish": "sv", "swahili": "sw",
    "tamil": "ta", "telugu": "te", "tajik": "tg", "thai": "th", "turkmen": "tk", "tagalog": "tl", "turkish": "tr",
    "tatar": "tt", "ukrainian": "uk", "urdu": "ur", "uzbek": "uz", "vietnamese": "vi", "yiddish": "yi",
    "yoruba": "yo", "cantonese": "yue", "chinese": "zh", "mandarin": "zh",
}
