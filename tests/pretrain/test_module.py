import torch

from atst_hear.models.checkpoints import load_archive
from atst_hear.pretrain.checkpoint import check_pretrain_layout
from atst_hear.pretrain.module import PretrainModule, TeacherStudent, parameter_groups


def encoder_free_keys(state_dict) -> set[str]:
    return {k for k in state_dict if ".encoder." not in k}


def test_teacher_starts_as_a_frozen_copy_without_predictor(tiny_recipe):
    model = TeacherStudent(tiny_recipe("frame"))
    teacher, student = model.ema_pairs()
    assert all(torch.equal(t, s) for t, s in zip(teacher, student))
    assert all(not p.requires_grad for p in model.teacher.parameters())
    assert not hasattr(model.teacher, "predictor")
    # encoder + projector (its Linear, BatchNorm weight and bias, Linear), never the predictor
    assert len(teacher) == len(list(model.student.encoder.parameters())) + 4


def test_state_dict_has_the_official_layout(tiny_recipe, official_fixtures):
    for flavour in ("frame", "clip"):
        module = PretrainModule(tiny_recipe(flavour))
        state = module.state_dict()
        check_pretrain_layout(state, flavour)
        official = load_archive(official_fixtures / f"{flavour}_tiny.ckpt")["state_dict"]
        assert encoder_free_keys(state) == encoder_free_keys(official)
        ours = {k.split("encoder.", 1)[1] for k in state if k.startswith("model.teacher.encoder.")}
        theirs = {
            k.split("encoder.", 1)[1] for k in official if k.startswith("model.teacher.encoder.")
        }
        # the fixture has 3 blocks, tiny has 4: compare the names of one block and the rest
        assert {k for k in ours if not k.startswith("blocks.")} == {
            k for k in theirs if not k.startswith("blocks.")
        }


def test_weight_decay_applies_to_weights_only(tiny_recipe):
    model = TeacherStudent(tiny_recipe("frame"))
    decayed, plain = parameter_groups(model.student)
    names = {id(p): n for n, p in model.student.named_parameters()}
    decayed_names = {names[id(p)] for p in decayed["params"]}
    plain_names = {names[id(p)] for p in plain["params"]}
    assert "encoder.pos_embed" in decayed_names and "encoder.mask_embed" in decayed_names
    assert "encoder.blocks.0.attn.qkv.weight" in decayed_names
    assert "projector.0.weight" in decayed_names
    assert "encoder.blocks.0.attn.proj.bias" in plain_names
    assert "encoder.norm_frame.weight" in plain_names and "projector.1.weight" in plain_names
    assert not decayed_names & plain_names


def test_clip_freezes_the_unused_mask_embedding(tiny_recipe):
    model = TeacherStudent(tiny_recipe("clip"))
    assert not model.student.encoder.mask_embed.requires_grad
    groups = parameter_groups(model.student)
    trained = {id(p) for g in groups for p in g["params"]}
    assert id(model.student.encoder.mask_embed) not in trained
    assert id(model.student.encoder.cls_token) in trained
