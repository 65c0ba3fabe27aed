# The web demo on a CPU machine:  docker build -t asr-quant . && docker run -p 7860:7860 asr-quant
FROM python:3.11-slim

# The Debian packages a Hugging Face Space installs from packages.txt, installed the same way here:
# libsndfile1 (soundfile's fallback reader). No espeak-ng: the INT8 calibration speech ships in the package.
# PyAV's wheel bundles ffmpeg's libraries, so no ffmpeg package is needed for mp3/m4a/webm.
COPY packages.txt /tmp/packages.txt
RUN apt-get update \
 && xargs -a /tmp/packages.txt apt-get install -y --no-install-recommends \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.txt .
# torch from the CPU index first (the PyPI wheel carries CUDA libraries a CPU box never uses),
# then everything else; requirements.txt pins the same torch version, so pip keeps this one.
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
 && pip install --no-cache-dir -r requirements.txt

RUN useradd --create-home --uid 1000 app
COPY --chown=app:app . .
USER app

# Listen on every interface inside the container; artifacts (ONNX, INT8) go to the user's cache.
ENV ASRQ_SERVER_NAME=0.0.0.0 \
    ASRQ_SERVER_PORT=7860 \
    ASRQ_CACHE_DIR=/home/app/.cache/asr-quant \
    PYTHONUNBUFFERED=1 \
    GRADIO_ANALYTICS_ENABLED=False \
    HF_HUB_OFFLINE=1
EXPOSE 7860
CMD ["python", "app.py"]
