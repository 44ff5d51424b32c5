"""CIFAR-10 binary reader (stablenet.data.cifar) on small synthetic .bin files written here."""

import numpy as np
import pytest
import torch

from stablenet.data.cifar import (CIFAR10_SUBDIR, CIFAR10_TRAIN_FILES, RECORD_BYTES, cifar10, find_cifar10,
                                  read_cifar10, read_cifar10_batch)


def records(labels, seed):
    """Bytes of CIFAR-10 records with the given labels and random pixels; also the pixels (n, 3, 32, 32)."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(len(labels), 3, 32, 32), dtype=np.uint8)
    raw = b"".join(bytes([lab]) + pixels[i].tobytes() for i, lab in enumerate(labels))
    return raw, pixels


def write_set(folder, n_per_file=3):
    """Six batch files; returns {name: (labels, pixels)}."""
    folder.mkdir(parents=True, exist_ok=True)
    content = {}
    for k, name in enumerate(CIFAR10_TRAIN_FILES + ("test_batch.bin",)):
        labels = [(k + i) % 10 for i in range(n_per_file)]
        raw, pixels = records(labels, k)
        (folder / name).write_bytes(raw)
        content[name] = (labels, pixels)
    return content


def test_record_layout_label_then_rgb_planes(tmp_path):
    labels = [3, 9, 0]
    raw, pixels = records(labels, 0)
    assert len(raw) == 3 * RECORD_BYTES == 3 * 3073
    # the first record by hand: byte 0 label, bytes 1..1024 red plane row-major, then green, blue
    assert raw[0] == 3 and raw[1 + 5 * 32 + 7] == pixels[0, 0, 5, 7] and raw[1 + 1024 + 33] == pixels[0, 1, 1, 1]
    path = tmp_path / "data_batch_1.bin"
    path.write_bytes(raw)
    x, y = read_cifar10_batch(path)
    assert x.dtype == torch.uint8 and x.shape == (3, 3, 32, 32) and y.dtype == torch.int64
    assert y.tolist() == labels and torch.equal(x, torch.from_numpy(pixels))


@pytest.mark.parametrize("subdir", [False, True])
def test_read_set_in_directory_or_tarball_folder(tmp_path, subdir):
    content = write_set(tmp_path / CIFAR10_SUBDIR if subdir else tmp_path)
    raw = read_cifar10(tmp_path)
    x, y = raw["train"]
    assert x.shape == (15, 3, 32, 32) and y.tolist() == sum((content[n][0] for n in CIFAR10_TRAIN_FILES), [])
    assert torch.equal(x[3:6], torch.from_numpy(content["data_batch_2.bin"][1]))
    assert torch.equal(raw["test"][0], torch.from_numpy(content["test_batch.bin"][1]))


def test_missing_files_name_every_path_tried(tmp_path):
    write_set(tmp_path)
    (tmp_path / "data_batch_4.bin").unlink()
    with pytest.raises(FileNotFoundError) as err:
        find_cifar10(tmp_path)
    msg = str(err.value)
    assert f"{tmp_path} lacks data_batch_4.bin" in msg and "does not exist" in msg
    for name in CIFAR10_TRAIN_FILES + ("test_batch.bin",):
        assert str(tmp_path / name) in msg and str(tmp_path / CIFAR10_SUBDIR / name) in msg
    assert "cifar-10-binary.tar.gz" in msg


def test_truncated_file(tmp_path):
    write_set(tmp_path)
    path = tmp_path / "data_batch_3.bin"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match=r"data_batch_3.bin: 9119 bytes is not a whole number of 3073-byte "
                                         r"records \(2 records and 2973 bytes left over\)"):
        read_cifar10(tmp_path)


def test_bad_label_empty_file_and_record_count(tmp_path):
    raw, _ = records([1, 12], 0)
    (tmp_path / "a.bin").write_bytes(raw)
    with pytest.raises(ValueError, match=r"a.bin: record 1 has label 12, expected 0..9"):
        read_cifar10_batch(tmp_path / "a.bin")
    (tmp_path / "b.bin").write_bytes(b"")
    with pytest.raises(ValueError, match="b.bin: empty"):
        read_cifar10_batch(tmp_path / "b.bin")
    raw, _ = records([1, 2], 0)
    (tmp_path / "c.bin").write_bytes(raw)
    with pytest.raises(ValueError, match="c.bin: 2 records, expected 10000"):
        read_cifar10_batch(tmp_path / "c.bin", expected_records=10000)


def test_dataset_splits(tmp_path):
    content = write_set(tmp_path, n_per_file=4)
    ds = cifar10(data_dir=tmp_path, n_val=5, seed=1)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (15, 5, 4)
    assert ds.image_shape == (3, 32, 32) and ds.in_features == 3072 and ds.n_classes == 10
    assert ds.train.x.dtype == torch.float32 and 0.0 <= float(ds.train.x.min()) and float(ds.train.x.max()) <= 1.0
    expected = torch.from_numpy(content["test_batch.bin"][1]).float().div(255).reshape(4, -1)
    assert torch.equal(ds.test.x, expected)
    again = cifar10(data_dir=tmp_path, n_val=5, seed=1)
    assert torch.equal(again.train.x, ds.train.x) and torch.equal(again.val.y, ds.val.y)
    assert cifar10(data_dir=tmp_path, n_val=5, n_train=6, seed=1).train.x.shape == (6, 3072)
    with pytest.raises(ValueError, match="n_train=16 exceeds the 15 training images left after n_val=5"):
        cifar10(data_dir=tmp_path, n_val=5, n_train=16)
