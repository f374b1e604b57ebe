import pytest
import torch

from atst_hear.pretrain.heads import build_mlp, byol_distance, ema_update, symmetric_byol_loss


def test_mlp_has_the_official_layout():
    mlp = build_mlp(192, 4096, 256)
    shapes = {k: tuple(v.shape) for k, v in mlp.state_dict().items()}
    assert shapes["0.weight"] == (4096, 192)
    assert shapes["1.weight"] == (4096,) and "1.running_mean" in shapes
    assert shapes["3.weight"] == (256, 4096)
    assert "0.bias" not in shapes and "3.bias" not in shapes


def test_byol_distance_is_two_minus_two_cosine():
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    assert byol_distance(x, x).item() == pytest.approx(0.0, abs=1e-6)
    assert byol_distance(x, -x).item() == pytest.approx(4.0)
    assert byol_distance(x, x.flip(1)).item() == pytest.approx(2.0)


def test_loss_is_symmetric_and_zero_for_identical_outputs():
    generator = torch.Generator().manual_seed(0)
    s1, s2, t1, t2 = (torch.randn(8, 16, generator=generator) for _ in range(4))
    loss = symmetric_byol_loss((s1, s2), (t1, t2))
    assert symmetric_byol_loss((s2, s1), (t2, t1)).item() == pytest.approx(loss.item())
    assert loss.item() > 0.5
    # each prediction matches the teacher's other view: nothing left to learn
    assert symmetric_byol_loss((t2, t1), (t1, t2)).item() == pytest.approx(0.0, abs=1e-6)
    same = torch.randn(8, 16, generator=generator)
    assert symmetric_byol_loss((same, same), (same, same)).item() == pytest.approx(0.0, abs=1e-6)


def test_loss_gradient_reaches_the_student_only():
    student = torch.randn(4, 8, requires_grad=True)
    teacher = torch.randn(4, 8, requires_grad=True)
    symmetric_byol_loss((student, student), (teacher, teacher)).backward()
    assert student.grad is not None and student.grad.abs().sum() > 0
    assert teacher.grad is None


def test_ema_update_math():
    teacher = [torch.tensor([1.0, 2.0]), torch.tensor([[0.0]])]
    student = [torch.tensor([3.0, 6.0]), torch.tensor([[10.0]])]
    ema_update(teacher, student, 0.9)
    assert torch.allclose(teacher[0], torch.tensor([1.2, 2.4]))
    assert torch.allclose(teacher[1], torch.tensor([[1.0]]))
    ema_update(teacher, student, 1.0)
    assert torch.allclose(teacher[0], torch.tensor([1.2, 2.4]))
    ema_update(teacher, student, 0.0)
    assert torch.equal(teacher[0], student[0])


def test_ema_update_refuses_mismatched_tensors():
    with pytest.raises(ValueError, match="2 teacher but 1 student"):
        ema_update([torch.zeros(1), torch.zeros(1)], [torch.zeros(1)], 0.5)
    with pytest.raises(ValueError, match="shapes"):
        ema_update([torch.zeros(2)], [torch.zeros(3)], 0.5)
