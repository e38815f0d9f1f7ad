import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from hf_musiccodec import MusicCodecModel
from hf_musiccodec.codecs import file_format as ff
from hf_musiccodec.codecs.file_format import (
    CompressedAudio,
    CompressedFileError,
    codec_fingerprint,
    decode_waveform,
    encode_waveform,
    pack_codes,
    read_compressed,
    unpack_codes,
    write_compressed,
)
from hf_musiccodec.testing.tiny import tiny_codec_config


def tiny_model(preset="encodec_24khz", seed=0, **overrides):
    # Random (not k-means-initialised) codebooks, so that codes are not all zero before training.
    torch.manual_seed(seed)
    return MusicCodecModel(tiny_codec_config(preset, kmeans_init=False, **overrides)).eval()


def noise(channels, samples, seed=0):
    return (0.3 * np.random.default_rng(seed).standard_normal((channels, samples))).astype(np.float32)


@pytest.fixture(scope="module")
def model():
    return tiny_model(codebook_size=1024)


@pytest.fixture(scope="module")
def compressed(model):
    return encode_waveform(model, noise(1, 4000), 1.5, name="tiny")


# --------------------------------------------------------------------------- bit packing


@pytest.mark.parametrize("bits", [1, 3, 8, 9, 10, 11, 16, 17, 32])
@pytest.mark.parametrize("count", [0, 1, 7, 8, 9, 1001])
def test_pack_roundtrip(bits, count):
    codes = np.random.default_rng(bits * 1000 + count).integers(0, 1 << bits, size=count, dtype=np.int64)
    data = pack_codes(codes, bits)
    assert len(data) == (count * bits + 7) // 8
    np.testing.assert_array_equal(unpack_codes(data, bits, count), codes)


def test_pack_layout_is_msb_first_and_zero_padded():
    assert pack_codes(np.array([1, 2]), 2) == bytes([0b0110_0000])
    assert pack_codes(np.array([1023, 0, 1]), 10) == bytes([0xFF, 0xC0, 0x00, 0b0000_0100])
    assert pack_codes(np.array([[1], [3]], dtype=np.uint8), 3) == bytes([0b0010_1100])


def test_pack_blocks_are_seamless(monkeypatch):
    monkeypatch.setattr(ff, "_PACK_BLOCK", 16)
    codes = np.random.default_rng(0).integers(0, 1 << 10, size=1003)
    data = pack_codes(codes, 10)
    monkeypatch.setattr(ff, "_PACK_BLOCK", 1 << 20)
    assert data == pack_codes(codes, 10)
    monkeypatch.setattr(ff, "_PACK_BLOCK", 16)
    np.testing.assert_array_equal(unpack_codes(data, 10, codes.size), codes)


def test_pack_rejects_bad_codes():
    with pytest.raises(ValueError, match="fit 4 bits"):
        pack_codes(np.array([16]), 4)
    with pytest.raises(ValueError, match="fit"):
        pack_codes(np.array([-1]), 4)
    with pytest.raises(ValueError, match="integers"):
        pack_codes(np.array([1.0]), 4)
    with pytest.raises(ValueError, match="bits"):
        pack_codes(np.array([1]), 0)
    with pytest.raises(ValueError, match="need 2 bytes"):
        unpack_codes(b"\x00", 10, 1)


# --------------------------------------------------------------------------- fingerprint


def test_fingerprint_survives_save_and_load(model, tmp_path):
    model.save_pretrained(tmp_path / "codec")
    loaded = MusicCodecModel.from_pretrained(tmp_path / "codec")
    fp = codec_fingerprint(model)
    assert len(fp) == 16
    assert codec_fingerprint(loaded) == fp
    assert ff.codec_name(loaded) == "codec"


def test_fingerprint_separates_config_and_weights(model):
    other_weights = tiny_model(codebook_size=1024, seed=1)
    other_config = tiny_model(codebook_size=512)
    fp = codec_fingerprint(model)
    assert codec_fingerprint(other_weights)[:8] == fp[:8]
    assert codec_fingerprint(other_weights)[8:] != fp[8:]
    assert codec_fingerprint(other_config)[:8] != fp[:8]


def test_fingerprint_cache_follows_in_place_updates():
    m = tiny_model()
    before = codec_fingerprint(m)
    assert getattr(m, ff._CACHE_ATTR)[1] == before[8:]  # the cached weights digest
    assert codec_fingerprint(m) == before
    with torch.no_grad():
        next(m.parameters()).add_(1.0)
    assert codec_fingerprint(m) != before


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("preset", ["encodec_24khz", "dac_16khz", "encodec_48khz", "soundstream_24khz"])
def test_roundtrip_matches_direct_decode(preset, tmp_path):
    m = tiny_model(preset)
    cfg = m.config
    samples = int(cfg.sampling_rate * (2.3 if cfg.chunk_length else 0.3))
    audio = noise(cfg.audio_channels, samples)
    comp = encode_waveform(m, audio, None)
    assert len(np.unique(comp.audio_codes)) > 2
    path = write_compressed(tmp_path / "a.hfmc", comp)
    back = read_compressed(path, model=m)
    np.testing.assert_array_equal(back.audio_codes, comp.audio_codes)
    assert back.last_frame_pad_length == comp.last_frame_pad_length
    assert (back.sampling_rate, back.audio_channels, back.num_samples) == (cfg.sampling_rate, cfg.audio_channels, samples)
    assert back.bandwidth == pytest.approx(max(cfg.target_bandwidths), rel=1e-6)
    with torch.inference_mode():
        out = m.encode(torch.from_numpy(audio)[None])
        ref = m.decode(out.audio_codes, out.audio_scales, last_frame_pad_length=out.last_frame_pad_length)
    decoded = decode_waveform(m, back)
    assert decoded.shape == (1, cfg.audio_channels, samples)
    np.testing.assert_allclose(decoded, ref.audio_values[..., :samples].numpy(), atol=1e-6)
    if cfg.chunk_length:  # scales stored, last chunk's padding frames not stored
        assert back.audio_scales is not None and len(back.audio_scales) == back.num_chunks
        assert back.last_frame_pad_length > 0
        stored = back.num_quantizers * (back.num_chunks * back.frames - back.last_frame_pad_length)
        expected = (ff.HEADER_OVERHEAD + len(comp.model_name.encode()) + 4 * back.num_chunks
                    + (stored * back.bits + 7) // 8)
        assert path.stat().st_size == expected


def test_batch_roundtrip(model):
    audio = np.stack([noise(1, 3000, seed=1), noise(1, 3000, seed=2)])
    comp = encode_waveform(model, audio, 3.0, name="tiny")
    back = CompressedAudio.from_bytes(comp.to_bytes())
    assert back.audio_codes.shape[:3] == (1, 2, 4)
    np.testing.assert_array_equal(back.audio_codes, comp.audio_codes)
    assert decode_waveform(model, back).shape == (2, 1, 3000)


@pytest.mark.parametrize("bandwidth", [1.5, 3.0])
def test_bitrate_within_five_percent_of_nominal_for_10s(model, bandwidth, tmp_path):
    cfg = model.config
    comp = encode_waveform(model, noise(1, 10 * cfg.sampling_rate), bandwidth)
    path = write_compressed(tmp_path / "ten.hfmc", comp)
    nominal = cfg.num_quantizers_for_bandwidth(bandwidth) * cfg.bits_per_codebook * cfg.frame_rate / 1000
    assert nominal == pytest.approx(bandwidth)
    bitrate = path.stat().st_size * 8 / 10 / 1000
    assert nominal <= bitrate <= 1.05 * nominal


def test_encode_rejects_plain_autoencoder_and_bad_bandwidth(model):
    with pytest.raises(ValueError, match="no quantizer"):
        encode_waveform(tiny_model("autoencoder"), noise(1, 800))
    with pytest.raises(ValueError, match="unsupported bandwidth"):
        encode_waveform(model, noise(1, 800), 5.0)


def test_long_names_are_cut_at_a_character_boundary(compressed):
    comp = CompressedAudio(**{**compressed.__dict__, "model_name": "é" * 40})
    back = CompressedAudio.from_bytes(comp.to_bytes())
    assert back.model_name == "é" * 16


# --------------------------------------------------------------------------- refusals


def test_empty(tmp_path):
    (tmp_path / "e.hfmc").write_bytes(b"")
    with pytest.raises(CompressedFileError, match="empty file"):
        read_compressed(tmp_path / "e.hfmc")


@pytest.mark.parametrize("data", [b"RIFF\x00\x00\x00\x00WAVEfmt ", b"\x00", os.urandom(64) + b"x", b"hfmc" * 30])
def test_foreign(data):
    if data[:4] == ff.MAGIC:
        data = b"X" + data
    with pytest.raises(CompressedFileError, match="not an hf-musiccodec compressed file"):
        CompressedAudio.from_bytes(data, "f")


def test_truncated_everywhere(compressed):
    data = compressed.to_bytes()
    for cut in range(1, len(data)):
        with pytest.raises(CompressedFileError, match="truncated"):
            CompressedAudio.from_bytes(data[:cut], "t")


def test_unsupported_version(compressed):
    data = bytearray(compressed.to_bytes())
    data[4] = 9
    with pytest.raises(CompressedFileError, match="unsupported format version 9"):
        CompressedAudio.from_bytes(bytes(data))


def test_checksum_mismatch(compressed):
    data = bytearray(compressed.to_bytes())
    data[-10] ^= 0x01
    with pytest.raises(CompressedFileError, match="checksum mismatch"):
        CompressedAudio.from_bytes(bytes(data))


def test_every_single_byte_flip_is_refused(compressed):
    data = compressed.to_bytes()
    for i in range(len(data)):
        bad = bytearray(data)
        bad[i] ^= 0x10
        with pytest.raises(CompressedFileError) as info:
            CompressedAudio.from_bytes(bytes(bad), "x")
        assert "\n" not in str(info.value)


def test_trailing_bytes(compressed):
    with pytest.raises(CompressedFileError, match="unexpected bytes"):
        CompressedAudio.from_bytes(compressed.to_bytes() + b"\x00")


def test_insane_header_with_valid_crc_is_refused(compressed):
    data = bytearray(compressed.to_bytes()[:-4])
    offset = ff._PREFIX.size + data[6] + 16 + 4 + 1 + 4 + 4  # bits per code
    data[offset] = 0
    data += struct.pack("<I", zlib.crc32(bytes(data)))
    with pytest.raises(CompressedFileError, match="corrupted header"):
        CompressedAudio.from_bytes(bytes(data))


def test_codec_mismatch_names_the_expected_model(compressed, tmp_path):
    path = write_compressed(tmp_path / "c.hfmc", compressed)
    other = tiny_model(codebook_size=1024, seed=3)
    with pytest.raises(CompressedFileError, match="made by codec 'tiny'.*same configuration, different weights"):
        read_compressed(path, model=other)
    with pytest.raises(CompressedFileError, match="different configuration"):
        decode_waveform(tiny_model(), compressed)


# --------------------------------------------------------------------------- writing


def test_write_is_atomic_and_protects_inputs(compressed, tmp_path):
    target = tmp_path / "out.hfmc"
    target.write_bytes(b"old")
    with pytest.raises(ValueError, match="refusing to overwrite"):
        write_compressed(target, compressed, protect=[tmp_path / "." / "out.hfmc"])
    link = tmp_path / "link.hfmc"
    os.symlink(target, link)
    with pytest.raises(ValueError, match="refusing to overwrite"):
        write_compressed(link, compressed, protect=target)
    broken = CompressedAudio(**{**compressed.__dict__, "bits": 2})  # codes do not fit: fails mid-way
    with pytest.raises(ValueError, match="fit"):
        write_compressed(target, broken)
    with pytest.raises(OSError, match="cannot write"):
        write_compressed(tmp_path, compressed)  # a directory
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.hfmc", "out.hfmc"]
    write_compressed(target, compressed)
    assert read_compressed(target).model_name == "tiny"


# --------------------------------------------------------------------------- identity across releases


def test_identity_survives_a_new_config_option(model):
    """A release that adds a config option with a backward-compatible default changes no fingerprint."""
    from hf_musiccodec.codecs import MusicCodecConfig

    class NewerConfig(MusicCodecConfig):
        def __init__(self, new_option: int = 3, **kwargs):
            super().__init__(**kwargs)
            self.new_option = new_option

    cfg = model.config
    newer = NewerConfig.from_dict(cfg.to_dict())
    assert newer.new_option == 3
    for version in ff.SUPPORTED_VERSIONS:
        assert ff.canonical_config_json(newer, version) == ff.canonical_config_json(cfg, version)
    assert ff.canonical_config_json(NewerConfig.from_dict({**cfg.to_dict(), "new_option": 4})) != \
        ff.canonical_config_json(cfg)
    # Bookkeeping and training-only values do not count; architecture does.
    changed = {**cfg.to_dict(), "transformers_version": "9.9", "_name_or_path": "/elsewhere", "dtype": "bfloat16",
               "quantizer_dropout": 0.7, "commitment_weight": 3.0, "ema_decay": 0.5, "kmeans_iters": 99}
    assert ff.canonical_config_json(type(cfg).from_dict(changed)) == ff.canonical_config_json(cfg)
    assert ff.canonical_config_json(type(cfg).from_dict({**cfg.to_dict(), "kernel_size": 5})) != \
        ff.canonical_config_json(cfg)


GOLDEN = Path(__file__).resolve().parents[1] / "golden"


@pytest.mark.parametrize("name", ["bundled_v1", "bundled_v2", "tiny-encodec-24khz_v2", "tiny-encodec-48khz_v2"])
def test_golden_files_decode_to_the_stored_audio(name):
    """Files written by earlier releases decode, with their codec, to the audio they decoded to then."""
    from hf_musiccodec.codecs import default_model_path

    codec = name.rsplit("_", 1)[0]
    folder = default_model_path() if codec == "bundled" else GOLDEN / codec
    if not (Path(folder) / "config.json").is_file():
        pytest.skip(f"no codec at {folder}")
    model = MusicCodecModel.from_pretrained(folder).eval()
    compressed = read_compressed(GOLDEN / f"{name}.hfmc", model=model)
    assert compressed.version == int(name[-1])
    if codec == "bundled" and compressed.version >= 2:
        assert compressed.source == "hf_musiccodec:musiccodec-24khz"
    audio = decode_waveform(model, compressed)[0].astype(np.float64)
    expected = np.load(GOLDEN / f"{codec}_expected.npz")
    np.testing.assert_allclose(audio[..., ::4], expected["strided"], atol=1e-5)
    assert audio.sum() == pytest.approx(float(expected["sum"]), abs=1e-3)
    assert np.square(audio).sum() == pytest.approx(float(expected["sum_sq"]), rel=1e-5)


# --------------------------------------------------------------------------- model source, metadata


def test_source_is_recorded_and_resolved(model, tmp_path):
    from hf_musiccodec.codecs import default_model_path

    model.save_pretrained(tmp_path / "codec")
    loaded = MusicCodecModel.from_pretrained(str(tmp_path / "codec" / ".." / "codec")).eval()
    comp = CompressedAudio.from_bytes(encode_waveform(loaded, noise(1, 800)).to_bytes())
    assert comp.source == str((tmp_path / "codec").resolve())
    assert ff.resolve_model_source(comp.source) == tmp_path / "codec"
    assert encode_waveform(model, noise(1, 800)).source == ""  # built in memory: nothing to record
    assert ff.resolve_model_source(str(tmp_path / "gone")) is None
    assert ff.resolve_model_source("nobody/no-such-codec") is None  # not in the local hub cache
    assert ff.resolve_model_source("hf_musiccodec:no-such-codec") is None
    if (default_model_path() / "config.json").is_file():
        assert ff.resolve_model_source("hf_musiccodec:musiccodec-24khz") == default_model_path()


def _with_metadata(comp, metadata: bytes) -> bytes:
    """``comp`` serialised with ``metadata`` in place of its own, with a valid CRC."""
    data = comp.to_bytes()[:-4]
    at = ff._PREFIX.size + data[6] + ff._FIELDS.size
    old = ff._META_LEN.unpack_from(data, at)[0]
    data = data[:at] + ff._META_LEN.pack(len(metadata)) + metadata + data[at + 2 + old:]
    return data + struct.pack("<I", zlib.crc32(data))


def test_metadata_ignores_unknown_keys_and_refuses_garbage(compressed):
    comp = CompressedAudio(**{**compressed.__dict__, "source": "/some/codec"})
    back = CompressedAudio.from_bytes(_with_metadata(comp, b'{"source":"/some/codec","later":[1,2]}'))
    assert back.source == "/some/codec"
    np.testing.assert_array_equal(back.audio_codes, comp.audio_codes)
    for bad in (b"{", b"[1]", b'{"source":3}', b"\xff"):
        with pytest.raises(CompressedFileError, match="corrupted header"):
            CompressedAudio.from_bytes(_with_metadata(comp, bad))


def test_version_1_files_are_written_and_read_without_source(compressed):
    v1 = CompressedAudio(**{**compressed.__dict__, "version": 1})
    back = CompressedAudio.from_bytes(v1.to_bytes())
    assert back.version == 1 and back.source == ""
    assert len(v1.to_bytes()) == len(compressed.to_bytes()) - 2  # no metadata length field
    with pytest.raises(ValueError, match="version 1 has no model source"):
        CompressedAudio(**{**v1.__dict__, "source": "x"}).to_bytes()


# --------------------------------------------------------------------------- blocks


@pytest.mark.parametrize("preset", ["encodec_24khz", "dac_16khz", "encodec_48khz"])
def test_block_encode_and_decode_equal_whole_file(preset):
    m = tiny_model(preset)
    cfg = m.config
    audio = noise(cfg.audio_channels, int(cfg.sampling_rate * (2.2 if cfg.chunk_length else 0.4)) + 7)
    whole = encode_waveform(m, audio)
    cuts = [0, 5, 6, 700, 2000, audio.shape[-1]]
    blocks = (audio[:, a:b] for a, b in zip(cuts, cuts[1:]))
    streamed = ff.encode_audio_blocks(m, blocks, chunk_seconds=0.05)
    assert streamed.to_bytes() == whole.to_bytes()
    decoded = np.concatenate(list(ff.decode_audio_blocks(m, streamed, chunk_seconds=0.05)), axis=-1)
    np.testing.assert_allclose(decoded, decode_waveform(m, whole), atol=1e-5)
    assert decoded.shape == (1, cfg.audio_channels, audio.shape[-1])
    with pytest.raises(ValueError, match="keep their"):
        ff.encode_audio_blocks(m, [audio[:, :100], audio[:, :100].repeat(2, 0)])
