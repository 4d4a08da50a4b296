import pickle

import numpy as np
import pytest

from core.backbones.bundled import checkpoint_path
from core.backbones.checkpoint import MAGIC_NUMBER, PROTOCOL_VERSION, CheckpointError, read_state_dict


def test_reads_the_bundled_checkpoint():
    sd = read_state_dict(checkpoint_path())
    assert len(sd) == 296
    assert sum(v.size for v in sd.values()) == 4_694_073
    assert sd["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert sd["_conv_head.weight"].shape == (1280, 320, 1, 1)
    assert sd["_fc.weight"].shape == (1000, 1280)
    assert "_blocks.0._expand_conv.weight" not in sd
    assert sd["_blocks.1._expand_conv.weight"].shape == (96, 16, 1, 1)
    assert sd["_bn0.running_var"].dtype == np.float32 and (sd["_bn0.running_var"] >= 0).all()


def _legacy_file(tmp_path, state_pickle: bytes) -> str:
    path = tmp_path / "evil.pth"
    parts = [pickle.dumps(MAGIC_NUMBER, protocol=2), pickle.dumps(PROTOCOL_VERSION, protocol=2),
             pickle.dumps({"little_endian": True}, protocol=2), state_pickle, pickle.dumps([], protocol=2)]
    path.write_bytes(b"".join(parts))
    return str(path)


def test_refuses_a_pickle_naming_another_class(tmp_path):
    # GLOBAL os.system + REDUCE: what a malicious checkpoint would contain.
    evil = b"\x80\x02cos\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03."
    with pytest.raises(CheckpointError, match=r"refusing to unpickle os\.system"):
        read_state_dict(_legacy_file(tmp_path, evil))


def test_rejects_wrong_magic_and_truncation(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(pickle.dumps(12345, protocol=2))
    with pytest.raises(CheckpointError, match="wrong magic number"):
        read_state_dict(bad)
    data = checkpoint_path().read_bytes()
    cut = tmp_path / "cut.pth"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        read_state_dict(cut)

