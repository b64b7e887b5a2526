import pytest
from pythonosc.osc_bundle import OscBundle
from pythonosc.osc_message import OscMessage

from ser_daemon.errors import ConfigError
from ser_daemon.outputs.mapping import load_mapping
from ser_daemon.outputs.osc_schemes import VmcScheme, VRChatScheme, VxpScheme, make_scheme
from test_messages import make_state

LABELS = ("neutral", "happy", "angry")


def tags(m: OscMessage) -> bytes:
    return m.dgram.split(b",", 1)[1].split(b"\x00", 1)[0]


def decode(packets: list[bytes]) -> list[OscMessage]:
    out = []
    for p in packets:
        out.extend(OscBundle(p) if OscBundle.dgram_is_bundle(p) else [OscMessage(p)])
    return out


def weights_for(state):
    return load_mapping(None, state.labels).all_weights(state.smoothed)


def test_vrchat_parameters_types_and_names() -> None:
    st = make_state()
    prof = VRChatScheme(LABELS, preset="full")
    msgs = {m.address: m for m in decode(prof.encode(st, weights_for(st), now=0.0))}
    assert set(msgs) == {
        "/avatar/parameters/SER_Neutral", "/avatar/parameters/SER_Happy", "/avatar/parameters/SER_Angry",
        "/avatar/parameters/SER_Confidence", "/avatar/parameters/SER_Label", "/avatar/parameters/SER_Voice",
        "/avatar/parameters/SER_Intensity",
    }
    assert tags(msgs["/avatar/parameters/SER_Happy"]) == b"f"
    assert tags(msgs["/avatar/parameters/SER_Label"]) == b"i" and msgs["/avatar/parameters/SER_Label"].params == [2]
    assert tags(msgs["/avatar/parameters/SER_Voice"]) == b"T"
    # A 0 or 1 float still goes out as an OSC float.
    st0 = make_state(smoothed=(0.0, 1.0, 0.0), confidence=1.0)
    prof.request_full_resend()
    m0 = {m.address: m for m in decode(prof.encode(st0, weights_for(st0), now=10.0))}
    assert tags(m0["/avatar/parameters/SER_Neutral"]) == b"f" and m0["/avatar/parameters/SER_Neutral"].params == [0.0]


def test_vrchat_sends_on_change_only_and_throttles() -> None:
    st = make_state()
    prof = VRChatScheme(LABELS, max_hz=5.0, preset="full")
    w = weights_for(st)
    assert prof.encode(st, w, now=0.0)
    assert prof.encode(st, w, now=1.0) == []  # nothing changed
    tiny = make_state(smoothed=(0.1501, 0.7502, 0.0997))  # below VRChat's 1/127 network step
    assert prof.encode(tiny, w, now=2.0) == []
    assert prof.encode(make_state(smoothed=(0.1, 0.7, 0.2)), w, now=2.0)
    changed = make_state(smoothed=(0.05, 0.2, 0.75), label="angry")
    assert prof.encode(changed, w, now=2.05) == []  # within 200 ms of the last send: throttled
    later = decode(prof.encode(changed, w, now=3.0))
    addrs = {m.address for m in later}
    assert "/avatar/parameters/SER_Angry" in addrs and "/avatar/parameters/SER_Label" in addrs
    assert "/avatar/parameters/SER_Voice" not in addrs  # unchanged
    prof.request_full_resend()  # VRChat said /avatar/change: everything, but still throttled
    assert prof.encode(changed, w, now=3.01) == []
    assert len(decode(prof.encode(changed, w, now=3.25))) == 7
    final = make_state(raw=(), final=True, label="neutral", voice_active=False)
    assert decode(prof.encode(final, w, now=3.26))  # the final state is never throttled


@pytest.mark.parametrize("prefix", ["SER ", "SER-", "Émo_", ""])
def test_vrchat_names_with_spaces_or_symbols_are_refused(prefix: str) -> None:
    if prefix == "":
        VRChatScheme(LABELS, prefix=prefix)  # an empty prefix is fine: Happy, Label, ...
        return
    with pytest.raises(ConfigError, match="letters, digits and underscores"):
        VRChatScheme(LABELS, prefix=prefix)
    with pytest.raises(ConfigError):
        make_scheme("vrchat", ("happy", "very angry"), vrchat_params="full")


def test_vmc_bundle_values_then_apply() -> None:
    st = make_state(label="angry", smoothed=(0.05, 0.05, 0.9), confidence=0.9)
    w = weights_for(st)
    [pkt] = VmcScheme().encode(st, w, now=0.0)
    msgs = list(OscBundle(pkt))
    assert msgs[-1].address == "/VMC/Ext/Blend/Apply" and msgs[-1].params == []
    vals = {m.params[0]: m.params[1] for m in msgs[:-1]}
    assert all(m.address == "/VMC/Ext/Blend/Val" and tags(m) == b"sf" for m in msgs[:-1])
    assert set(vals) >= {"Joy", "Angry", "Sorrow", "Fun", "Neutral"}
    assert vals["Angry"] > 0.8 and vals["Joy"] < 0.1
    plain = VmcScheme(bundle=False).encode(st, w, now=0.0)
    assert len(plain) == len(msgs) and OscMessage(plain[-1]).address == "/VMC/Ext/Blend/Apply"


def test_vxp_numbers_follow_ravdess_order() -> None:
    prof = VxpScheme()
    labels = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
    for i, label in enumerate(labels):
        st = make_state(labels=labels, label=label, smoothed=tuple(0.9 if x == label else 0.0125 for x in labels),
                        raw=tuple(0.125 for _ in labels), confidence=0.9)
        prof.request_full_resend()
        msgs = {m.address: m for m in decode(prof.encode(st, {}, now=float(i)))}
        assert msgs["/avatar/parameters/VXP_Expression"].params == [i + 1]
        assert tags(msgs["/avatar/parameters/VXP_Expression"]) == b"i"
        assert msgs["/avatar/parameters/VXP_Confidence"].params[0] == pytest.approx(0.9)
    silent = make_state(labels=labels, label="neutral", voice_active=False, smoothed=(1.0,) + (0.0,) * 7,
                        raw=(0.125,) * 8, confidence=1.0)
    prof.request_full_resend()
    msgs = {m.address: m for m in decode(prof.encode(silent, {}, now=100.0))}
    assert msgs["/avatar/parameters/VXP_Expression"].params == [1]  # at rest after a pause: neutral


def test_vxp_confidence_is_zero_while_unsure() -> None:
    """VXP reads "Default (unsure)" with a confidence; a full confidence there would show a face."""
    prof = VxpScheme()
    unsure = make_state(labels=LABELS, label="happy", confidence=0.9, uncertain=True)
    msgs = {m.address: m.params for m in decode(prof.encode(unsure, {}, now=0.0))}
    assert msgs == {"/avatar/parameters/VXP_Expression": [0], "/avatar/parameters/VXP_Confidence": [0.0]}
    prof.request_full_resend()
    held = make_state(labels=LABELS, label="happy", voice_active=False, confidence=0.9)  # a pause within the hold
    msgs = {m.address: m.params for m in decode(prof.encode(held, {}, now=0.5))}
    assert msgs["/avatar/parameters/VXP_Expression"] == [3]
    assert msgs["/avatar/parameters/VXP_Confidence"][0] == pytest.approx(0.9)
    prof.request_full_resend()
    unknown = make_state(labels=("bored", "happy"), label="bored", smoothed=(0.9, 0.1), raw=(0.9, 0.1), confidence=0.9)
    msgs = {m.address: m.params for m in decode(prof.encode(unknown, {}, now=1.0))}
    assert msgs["/avatar/parameters/VXP_Expression"] == [0] and msgs["/avatar/parameters/VXP_Confidence"] == [0.0]


def test_vrchat_label_and_voice_while_silent_or_unsure() -> None:
    prof = VRChatScheme(LABELS, preset="full")
    assert prof.label_index(make_state(label="angry")) == 3
    assert prof.label_index(make_state(label="angry", voice_active=False)) == 3  # held through a pause
    no_neutral = VRChatScheme(("happy", "angry"), preset="full")
    assert no_neutral.label_index(make_state(labels=("happy", "angry"), label="neutral")) == 0
    silent = make_state(voice_active=False)
    msgs = {m.address: m for m in decode(prof.encode(silent, {}, now=0.0))}
    assert tags(msgs["/avatar/parameters/SER_Voice"]) == b"F"
    assert msgs["/avatar/parameters/SER_Confidence"].params == [pytest.approx(0.75)]


@pytest.mark.parametrize("max_hz,ok", [(0.1, True), (100.0, True), (0.09, False), (100.5, False)])
def test_send_rate_limits(max_hz: float, ok: bool) -> None:
    if ok:
        assert VRChatScheme(LABELS, max_hz=max_hz).min_interval_s == pytest.approx(1.0 / max_hz)
    else:
        with pytest.raises(ConfigError, match="0.1..100 Hz"):
            VRChatScheme(LABELS, max_hz=max_hz)


def test_throttle_interval_boundary_and_float_step() -> None:
    prof = VRChatScheme(LABELS, max_hz=4.0, preset="full")
    assert prof.encode(make_state(smoothed=(0.1, 0.7, 0.2)), {}, now=10.0)
    assert prof.encode(make_state(smoothed=(0.2, 0.6, 0.2)), {}, now=10.249) == []
    sent = decode(prof.encode(make_state(smoothed=(0.2, 0.6, 0.2)), {}, now=10.25))  # exactly 1/max_hz later
    assert {m.address for m in sent} == {"/avatar/parameters/SER_Neutral", "/avatar/parameters/SER_Happy"}
    # One VRChat network step (1/127) apart is a change; under half a step is not.
    step = 1.0 / 127.0
    assert decode(prof.encode(make_state(smoothed=(26 * step, 0.6, 0.2)), {}, now=12.0))
    assert prof.encode(make_state(smoothed=(26.4 * step, 0.6, 0.2)), {}, now=13.0) == []
    assert not any(OscBundle.dgram_is_bundle(p) for p in prof.encode(make_state(label="angry"), {}, now=14.0))


def test_generic_profile_addresses_weights_and_status() -> None:
    from ser_daemon.outputs.osc_schemes import GenericScheme

    st = make_state(stream="left ear")
    w = {"vrm": {"happy": 0.5}, "arkit": {"jawOpen": 0.25}, "vrm0": {"Joy": 1.0}}
    prof = GenericScheme()
    [pkt] = prof.encode(st, w, now=0.0)
    addrs = [m.address for m in OscBundle(pkt)]
    assert addrs[-3:] == ["/ser/vrm/happy", "/ser/vrm0/Joy", "/ser/arkit/jawOpen"]
    per = GenericScheme(bundle=False, prefix="/x", per_stream=True)
    msgs = [OscMessage(p) for p in per.encode(st, w, now=0.0)]
    assert msgs[0].address == "/x/left_ear/state" and msgs[-1].address == "/x/left_ear/arkit/jawOpen"
    assert [OscMessage(p).address for p in per.encode_status("left ear", "no_audio")] == ["/x/left_ear/status"]
    assert OscMessage(prof.encode_status("mic", "capturing")[0]).params == ["capturing"]
    assert VRChatScheme(LABELS).encode_status("mic", "no_audio") == []


def test_make_profile_by_name(caplog: pytest.LogCaptureFixture) -> None:
    from ser_daemon.outputs.osc_schemes import GenericScheme

    assert isinstance(make_scheme("generic", LABELS, bundle=False), GenericScheme)
    assert make_scheme("generic", LABELS, bundle=False).bundle is False
    assert make_scheme("vmc", LABELS, bundle=False).bundle is False
    vr = make_scheme("vrchat", LABELS, vrchat_prefix="Face_", max_hz=2.0)
    assert isinstance(vr, VRChatScheme) and vr.prefix == "Face_" and vr.min_interval_s == 0.5
    with caplog.at_level("WARNING", logger="ser_daemon.outputs.osc_schemes"):
        vx = make_scheme("vxp", ("neutral", "happy", "bored"), max_hz=2.0)
    assert isinstance(vx, VxpScheme) and vx.min_interval_s == 0.5
    assert [(r.name, r.getMessage()) for r in caplog.records] == [
        ("ser_daemon.outputs.osc_schemes", "vxp profile: classes ['bored'] have no VXP number; sent as 0")]
    caplog.clear()
    make_scheme("vxp", ("neutral", "happy"))
    assert caplog.records == []
    with pytest.raises(ConfigError, match="unknown OSC profile 'osc'"):
        make_scheme("osc", LABELS)


def test_defaults_and_messages() -> None:
    from ser_daemon.outputs.osc_schemes import GenericScheme, check_vrchat_name

    assert VRChatScheme(LABELS).min_interval_s == 0.2 and VxpScheme().min_interval_s == 0.2  # 5 Hz
    vr = make_scheme("vrchat", LABELS)
    assert vr.prefix == "SER_" and vr.min_interval_s == 0.2
    assert VRChatScheme(LABELS, prefix="Face_").prefix == "Face_"
    assert make_scheme("generic", LABELS).bundle is True and make_scheme("vmc", LABELS).bundle is True
    with pytest.raises(ConfigError) as err:
        check_vrchat_name("a b")
    assert str(err.value).startswith("VRChat parameter name 'a b' is not usable: VRChat parameter names must be ")
    assert str(err.value).endswith("spaces or symbols make VRChat ignore the parameter silently")
    with pytest.raises(ConfigError, match="^VRChat parameter prefix 'SER X' is not usable"):
        VRChatScheme(LABELS, prefix="SER ")
    with pytest.raises(ConfigError) as err:
        make_scheme("osc", LABELS)
    assert str(err.value) == "unknown OSC profile 'osc'; choose one of generic, vrchat, vmc, vxp"
    assert check_vrchat_name("Ok_1") == "Ok_1"
    # Without weights the generic scheme and VMC still send their own messages.
    st = make_state()
    [pkt] = GenericScheme().encode(st, {}, now=0.0)
    assert [m.address for m in OscBundle(pkt)][-1] == "/ser/seq"
    [pkt] = VmcScheme().encode(st, {}, now=0.0)
    assert [m.address for m in OscBundle(pkt)] == ["/VMC/Ext/Blend/Apply"]


def test_generic_weights_go_out_as_floats() -> None:
    from ser_daemon.outputs.osc_schemes import GenericScheme

    [pkt] = GenericScheme().encode(make_state(), {"vrm": {"happy": 1}, "arkit": {"jawOpen": 0.5}}, now=0.0)
    msgs = {m.address: m for m in OscBundle(pkt)}
    assert msgs["/ser/vrm/happy"].params == [1.0] and tags(msgs["/ser/vrm/happy"]) == b"f"
    assert msgs["/ser/arkit/jawOpen"].params == [0.5]


def test_make_profile_hands_the_vrchat_table_and_mapping_targets_to_the_avatar_plan() -> None:
    mapping = load_mapping(None, LABELS)
    table = {"add": {"Face/Smile": "arkit:mouthSmileLeft"}, "avatars": {"avtr_x": {"preset": "none"}}}
    prof = make_scheme("vrchat", LABELS, vrchat_table=table, targets=mapping.targets)
    assert "Face/Smile" in [p.name for p in prof.plan.params]
    prof.set_avatar("avtr_x")
    assert list(prof.plan.params) == []
    prof.set_avatar(None)  # no avatar reported: the default plan
    assert "Face/Smile" in [p.name for p in prof.plan.params]
    bad = {"add": {"X": "arkit:noSuchShape"}}
    for build in (lambda: make_scheme("vrchat", LABELS, vrchat_table=bad, targets=mapping.targets),
                  lambda: VRChatScheme(LABELS, table=bad, targets=mapping.targets)):
        with pytest.raises(ConfigError, match="no arkit target 'noSuchShape'"):
            build()


def test_an_avatar_with_an_empty_id_is_never_chosen_for_no_avatar() -> None:
    prof = VRChatScheme(LABELS, table={"avatars": {"": {"preset": "none"}}})
    prof.set_avatar(None)
    assert prof.plan is prof.default_plan
    prof.set_avatar("")
    assert prof.plan is prof.default_plan


def test_vxp_target_keeps_vxp_names_whatever_the_model_labels() -> None:
    vx = make_scheme("vxp", ("neutral", "happy"), max_hz=4.0)
    assert [p.name for p in vx.plan.params] == ["VXP_Expression", "VXP_Confidence"]
    assert vx.min_interval_s == 0.25


def _mood_update(stream: str, label: str):
    """A mood update after a second of one stream's voice reading ``label`` (the minute's mood is known)."""
    import dataclasses

    from ser_daemon.core.mood_stage import MoodStage

    probs = tuple(1.0 if x == label else 0.0 for x in LABELS)
    st = make_state(stream=stream, seq=0, label=label, raw=probs, smoothed=probs, end_sample=8000, audio_time=0.5)
    stage = MoodStage(LABELS, 16000)
    update = stage.update(st)
    for k in (2, 3):
        update = stage.update(dataclasses.replace(st, seq=k, end_sample=8000 * k, audio_time=k / 2))
    assert update.reading is not None and update.reading.valence.minute is not None
    return update


def test_vrchat_mood_floats_follow_one_stream_carry_the_prefix_and_keep_the_rate() -> None:
    scheme = VRChatScheme(LABELS, prefix="X_", max_hz=4.0, mood=True)
    scheme.follow_stream = "mic"
    assert scheme.encode(make_state(), {}, 1.0)  # the first packet: everything
    assert scheme.encode_mood(_mood_update("guest", "happy"), 2.0) == []  # another stream's mood: not this avatar's
    floats = {m.address: m.params[0] for m in decode(scheme.encode_mood(_mood_update("mic", "angry"), 3.0))}
    assert sorted(floats) == ["/avatar/parameters/X_MoodArousal", "/avatar/parameters/X_MoodTalking",
                              "/avatar/parameters/X_MoodValence"]
    assert floats["/avatar/parameters/X_MoodValence"] < 0  # the mic's angry voice, not the guest's happy one
    scheme.muted = True
    zeros = decode(scheme.encode_mood(_mood_update("mic", "angry"), 3.25))  # exactly 1/max_hz later: due
    assert len(zeros) == 3 and all(m.params[0] == 0.0 for m in zeros)
    assert scheme.encode(make_state(label="angry"), {}, 3.4) == []  # the mood send counts for the rate limit
    assert scheme.encode(make_state(label="angry"), {}, 3.5)


def test_a_vrchat_scheme_sends_no_mood_unless_asked() -> None:
    assert make_scheme("vrchat", LABELS).mood_names == ()
    assert make_scheme("vrchat", LABELS, mood=True).mood_names == ("SER_MoodValence", "SER_MoodArousal",
                                                                   "SER_MoodTalking")


def test_a_final_state_sends_every_parameter_even_unchanged() -> None:
    """The stream's last word: a receiver that missed a packet still ends on the right values."""
    prof = VRChatScheme(LABELS, preset="full")
    st = make_state()
    first = {m.address for m in decode(prof.encode(st, weights_for(st), now=0.0))}
    assert prof.encode(st, weights_for(st), now=10.0) == []  # unchanged: nothing
    final = {m.address for m in decode(prof.encode(make_state(final=True), weights_for(st), now=20.0))}
    assert final == first


def test_the_generic_final_state_says_so() -> None:
    from ser_daemon.outputs.osc_schemes import GenericScheme

    msgs = decode(GenericScheme(bundle=False).encode(make_state(final=True), {}, 0.0))
    [fin] = [m for m in msgs if m.address == "/ser/final"]
    assert fin.params == [1] and tags(fin) == b"i"
    assert "/ser/final" not in {m.address for m in decode(GenericScheme().encode(make_state(), {}, 0.0))}


def test_the_old_names_still_import_with_a_warning_that_points_away_from_the_module() -> None:
    from ser_daemon.outputs import osc_schemes

    with pytest.warns(DeprecationWarning) as caught:
        cls = osc_schemes.VRChatProfile
    assert cls is VRChatScheme
    assert str(caught[0].message) == "ser_daemon.outputs.osc_schemes.VRChatProfile is now VRChatScheme"
    assert caught[0].filename != osc_schemes.__file__  # at the importer's line (stacklevel), not at the shim
    with pytest.raises(AttributeError) as err:
        osc_schemes.NoSuchScheme
    assert str(err.value) == "module 'ser_daemon.outputs.osc_schemes' has no attribute 'NoSuchScheme'"
