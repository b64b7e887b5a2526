// The Unity components on the stubs, frame by frame: drivers holding an emotion while a stand-in UniVRM
// rewrites the blendshapes every frame, one speaker per face, status and staleness, OnDisable, unscaled
// time, the port-conflict error, close time and main-thread allocation per frame.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Reflection;
using System.Threading;
using SerDaemon.Bridge;
using UnityEngine;

static class HarnessTests
{
    /// <summary>The sample's recorded state stream (DemoStates.txt), for the tests that replay it.</summary>
    public static string Recording;
    static Action<string> log;
    static int passed, failed;
    static readonly List<string> logLines = new List<string>();

    static void Check(string name, bool ok, string detail = "")
    {
        if (ok) { passed++; log("HARNESS ok " + name + (detail.Length > 0 ? " " + detail : "")); }
        else { failed++; log("HARNESS FAIL " + name + " " + detail); }
    }

    static string F(double v) { return v.ToString("F2", CultureInfo.InvariantCulture); }

    public static int Run(Action<string> output)
    {
        log = output;
        UnityEngine.Debug.Sink = line => { logLines.Add(line); output(line); };
        var tests = new Action[] { RawDriverAgainstVrm10Instance, Vrm10DriverHolds, Vrm0DriverHolds, OneSpeakerPerFace,
            NoAudioRelaxes, UnscaledTime, InfiniteGain, PortInUse, CloseTimes, AllocationPerFrame,
            Vrm10RestLeavesBlinkAlone, Vrm10BinaryExpressionShows, AnyDriverAnyScheme, WarnsWhenNothingDrives,
            NewAvatarRebinds, ReceiverFoundAfterSceneChange, RuntimeVrmLoadExample, Vrm0MissingClipWarned, InspectorEvents, VrmDriversAllocationFree };
        foreach (var t in tests)
        {
            UnityEngine.Object.StubNewScene();
            try { t(); }
            catch (Exception e) { Check(t.Method.Name, false, "threw " + e.ToString().Replace('\n', ' ')); }
        }
        log("HARNESS " + (failed == 0 ? "PASS" : "FAIL") + " passed=" + passed + " failed=" + failed);
        return failed == 0 ? 0 : 1;
    }

    // ---------------------------------------------------------------- helpers

    static SerDaemonReceiver NewReceiver(float staleAfter = 1e6f)
    {
        var r = new GameObject("SER Daemon").AddComponent<SerDaemonReceiver>();
        r.oscPort = 0;
        r.staleAfterSeconds = staleAfter;
        r.StubInvoke("OnEnable");
        return r;
    }

    /// <summary>A state injected as if decoded this frame (stream "mic").</summary>
    static EmotionState Inject(SerDaemonReceiver r, string set, string name, float value, string stream = "mic")
    {
        var s = r.Streams.Get(stream);
        s.SetValue(set, name, value);
        s.UpdatedAt = Time.unscaledTime;
        s.Version++;
        return s;
    }

    static SkinnedMeshRenderer Mesh(GameObject go, params string[] shapes)
    {
        var mesh = new Mesh { name = go.name + " mesh" };
        foreach (var s in shapes) mesh.StubAddBlendShape(s);
        var r = go.AddComponent<SkinnedMeshRenderer>();
        r.sharedMesh = mesh;
        return r;
    }

    static void Send(int port, byte[] datagram)
    {
        using (var u = new UdpClient()) u.Send(datagram, datagram.Length, new IPEndPoint(IPAddress.Loopback, port));
    }

    /// <summary>Frames until cond holds (bounded), true if it did.</summary>
    static bool FramesUntil(Func<bool> cond, params MonoBehaviour[] scripts)
    {
        var sw = Stopwatch.StartNew();
        while (sw.ElapsedMilliseconds < 3000)
        {
            StubPlayerLoop.Frame(0.01f, scripts);
            if (cond()) return true;
            Thread.Sleep(2);
        }
        return false;
    }

    // ---------------------------------------------------------------- tests

    static void RawDriverAgainstVrm10Instance()
    {
        // A VRM 1.0 avatar whose Vrm10Instance rewrites the blendshapes bound to expressions every
        // LateUpdate (here from input weights of 0). The raw driver, after it (12000 > 11000) and writing
        // every frame, keeps the emotion for 300 frames; writing only on change it loses it.
        foreach (bool everyFrame in new[] { true, false })
        {
            var r = NewReceiver();
            var go = new GameObject("Avatar");
            var mesh = Mesh(go, "Fcl_ALL_Joy", "Fcl_ALL_Angry");
            var vrm = go.AddComponent<UniVRM10.Vrm10Instance>();
            vrm.StubBind(mesh, UniVRM10.ExpressionKey.Happy, 0);
            vrm.StubBind(mesh, UniVRM10.ExpressionKey.Angry, 1);
            var d = go.AddComponent<SkinnedMeshEmotionDriver>();
            d.bindings = DefaultBindings.FromLabels("Fcl_ALL_");
            d.smoothingSeconds = 0f;
            d.writeEveryFrame = everyFrame;
            d.receiver = r;
            d.StubInvoke("OnEnable");
            Inject(r, EmotionState.SetProbs, "happy", 1f);
            int held = 0;
            for (int f = 0; f < 300; f++)
            {
                StubPlayerLoop.Frame(0.011f, vrm, d, r); // listed out of order on purpose: the execution order decides
                if (mesh.GetBlendShapeWeight(0) == 100f) held++;
            }
            if (everyFrame) Check("raw_driver_holds_against_vrm10_instance", held == 300, "held " + held + "/300 frames");
            else Check("raw_driver_write_on_change_loses_it", held < 300, "held " + held + "/300 frames (expected to lose it: the reason writeEveryFrame exists)");
            d.StubInvoke("OnDisable");
            r.StubInvoke("OnDisable");
        }
    }

    static void Vrm10DriverHolds()
    {
        var r = NewReceiver();
        var go = new GameObject("VRM1 Avatar");
        var mesh = Mesh(go, "Face.Joy", "Face.Angry", "Face.Sorrow");
        var vrm = go.AddComponent<UniVRM10.Vrm10Instance>();
        vrm.StubBind(mesh, UniVRM10.ExpressionKey.Happy, 0);
        vrm.StubBind(mesh, UniVRM10.ExpressionKey.Angry, 1);
        vrm.StubBind(mesh, UniVRM10.ExpressionKey.Sad, 2);
        var d = go.AddComponent<Vrm10EmotionDriver>();
        d.smoothingSeconds = 0f;
        d.shaping.deadzone = 0f; // raw values through: this test is about holding them
        d.StubInvoke("OnEnable"); // finds the receiver and the Vrm10Instance itself
        int warningsBefore = logLines.FindAll(l => l.StartsWith("WARNING Vrm10EmotionDriver")).Count;
        foreach (var n in new[] { "happy", "angry", "sad", "relaxed", "surprised", "neutral" }) Inject(r, EmotionState.SetVrm, n, 0f);
        Inject(r, EmotionState.SetVrm, "happy", 0.8f);
        Inject(r, EmotionState.SetVrm, "angry", 0.1f);
        int held = 0;
        var expr = vrm.Runtime.Expression;
        for (int f = 0; f < 300; f++)
        {
            StubPlayerLoop.Frame(0.011f, vrm, d, r);
            if (Math.Abs(mesh.GetBlendShapeWeight(0) - 80f) < 1e-3f && Math.Abs(mesh.GetBlendShapeWeight(1) - 10f) < 1e-3f) held++;
        }
        var warnings = logLines.FindAll(l => l.StartsWith("WARNING Vrm10EmotionDriver")).Count - warningsBefore;
        Check("vrm10_driver_holds_emotion", held == 300 && Math.Abs(expr.GetWeight(UniVRM10.ExpressionKey.Happy) - 0.8f) < 1e-4f,
            "held " + held + "/300 frames; SetWeight calls " + expr.StubSetWeightCalls);
        Check("vrm10_missing_expressions_warned_once", warnings == 3, warnings + " warnings (relaxed, surprised, neutral)");
        d.StubInvoke("OnDisable");
        StubPlayerLoop.Frame(0.011f, vrm, r);
        Check("vrm10_on_disable_resets", expr.GetWeight(UniVRM10.ExpressionKey.Happy) == 0f && mesh.GetBlendShapeWeight(0) == 0f);
        r.StubInvoke("OnDisable");
    }

    static void Vrm0DriverHolds()
    {
        var r = NewReceiver();
        var go = new GameObject("VRM0 Avatar");
        var mesh = Mesh(go, "Joy", "Angry", "Surprised");
        var proxy = go.AddComponent<VRM.VRMBlendShapeProxy>();
        proxy.StubBind(mesh, VRM.BlendShapeKey.CreateFromPreset(VRM.BlendShapePreset.Joy), 0);
        proxy.StubBind(mesh, VRM.BlendShapeKey.CreateFromPreset(VRM.BlendShapePreset.Angry), 1);
        proxy.StubBind(mesh, VRM.BlendShapeKey.CreateUnknown("Surprised"), 2);
        var d = go.AddComponent<Vrm0EmotionDriver>();
        d.smoothingSeconds = 0f;
        d.shaping.deadzone = 0f;
        d.intensity = 0.5f;
        d.StubInvoke("OnEnable");
        Inject(r, EmotionState.SetVrm0, "Joy", 0.9f);
        Inject(r, EmotionState.SetVrm0, "Surprised", 0.4f);
        int held = 0, applies0 = proxy.StubApplyCalls;
        for (int f = 0; f < 300; f++)
        {
            StubPlayerLoop.Frame(0.011f, d, r);
            if (Math.Abs(mesh.GetBlendShapeWeight(0) - 45f) < 1e-3f && Math.Abs(mesh.GetBlendShapeWeight(2) - 20f) < 1e-3f) held++;
        }
        Check("vrm0_driver_holds_emotion", held == 300 && proxy.StubApplyCalls - applies0 == 300,
            "held " + held + "/300 frames; Apply calls " + (proxy.StubApplyCalls - applies0));
        d.StubInvoke("OnDisable");
        Check("vrm0_on_disable_resets", mesh.GetBlendShapeWeight(0) == 0f && mesh.GetBlendShapeWeight(2) == 0f);
        // Over VMC (ser-daemon --osc vmc to the receiver) the clips arrive as the "vmc" set: used when no vrm0 came.
        var vmc = new GameObject("VRM0 Avatar over VMC");
        var mesh2 = Mesh(vmc, "Joy");
        var proxy2 = vmc.AddComponent<VRM.VRMBlendShapeProxy>();
        proxy2.StubBind(mesh2, VRM.BlendShapeKey.CreateFromPreset(VRM.BlendShapePreset.Joy), 0);
        var d2 = vmc.AddComponent<Vrm0EmotionDriver>();
        d2.smoothingSeconds = 0f;
        d2.shaping.deadzone = 0f;
        d2.receiver = r;
        d2.stream = "vmc-sender";
        d2.StubInvoke("OnEnable");
        Inject(r, EmotionState.SetVmc, "Joy", 0.6f, "vmc-sender");
        for (int f = 0; f < 10; f++) StubPlayerLoop.Frame(0.011f, d2, r);
        Check("vrm0_driver_reads_vmc", Math.Abs(mesh2.GetBlendShapeWeight(0) - 60f) < 1e-3f, "Joy " + F(mesh2.GetBlendShapeWeight(0)));
        d2.StubInvoke("OnDisable");
        r.StubInvoke("OnDisable");
    }

    static void OneSpeakerPerFace()
    {
        // Two streams over real UDP with the daemon's multi-stream addresses; each face follows its own.
        var r = NewReceiver();
        var faces = new List<SkinnedMeshRenderer>();
        var drivers = new List<MonoBehaviour> { r };
        foreach (var sel in new[] { "first", "bob" })
        {
            var go = new GameObject("Face " + sel);
            faces.Add(Mesh(go, "Joy", "Angry"));
            var d = go.AddComponent<SkinnedMeshEmotionDriver>();
            d.bindings = DefaultBindings.FromLabels("");
            d.smoothingSeconds = 0f;
            d.shaping.deadzone = 0f; // routing only: the 0.05 and 0.02 must arrive as they are
            d.stream = sel;
            d.receiver = r;
            d.StubInvoke("OnEnable");
            drivers.Add(d);
        }
        int port = r.ListeningPort;
        Send(port, OscWriter.Bundle(OscWriter.Message("/ser/alice/state", "angry", 0.9f), OscWriter.Message("/ser/alice/emotion/angry", 0.9f),
            OscWriter.Message("/ser/alice/emotion/happy", 0.05f), OscWriter.Message("/ser/alice/seq", 1)));
        Send(port, OscWriter.Bundle(OscWriter.Message("/ser/bob/state", "happy", 0.8f), OscWriter.Message("/ser/bob/emotion/angry", 0.02f),
            OscWriter.Message("/ser/bob/emotion/happy", 0.8f), OscWriter.Message("/ser/bob/seq", 1)));
        var loop = drivers.ToArray();
        bool ok = FramesUntil(() => r.Streams.Count == 2, loop);
        StubPlayerLoop.Frame(0.01f, loop);
        float aJoy = faces[0].GetBlendShapeWeight(0), aAngry = faces[0].GetBlendShapeWeight(1);
        float bJoy = faces[1].GetBlendShapeWeight(0), bAngry = faces[1].GetBlendShapeWeight(1);
        Check("one_speaker_per_face", ok && Math.Abs(aAngry - 90f) < 0.01f && Math.Abs(aJoy - 5f) < 0.01f && Math.Abs(bJoy - 80f) < 0.01f && Math.Abs(bAngry - 2f) < 0.01f,
            "first(alice) joy=" + F(aJoy) + " angry=" + F(aAngry) + "; bob joy=" + F(bJoy) + " angry=" + F(bAngry));
        foreach (var d in drivers) d.StubInvoke("OnDisable");
    }

    static void NoAudioRelaxes()
    {
        var r = NewReceiver(staleAfter: 0.5f);
        var go = new GameObject("Face");
        var mesh = Mesh(go, "Joy");
        var d = go.AddComponent<SkinnedMeshEmotionDriver>();
        d.bindings = DefaultBindings.FromLabels("");
        d.smoothingSeconds = 0.05f;
        d.receiver = r;
        d.StubInvoke("OnEnable");
        var st = Inject(r, EmotionState.SetProbs, "happy", 1f);
        for (int f = 0; f < 30; f++) { st.UpdatedAt = Time.unscaledTime; StubPlayerLoop.Frame(0.01f, r, d); }
        float before = mesh.GetBlendShapeWeight(0);
        st.Status = EmotionState.StatusNoAudio; // as a WebSocket "status" message or /ser/status sets it
        for (int f = 0; f < 60; f++) { st.UpdatedAt = Time.unscaledTime; StubPlayerLoop.Frame(0.01f, r, d); }
        float relaxed = mesh.GetBlendShapeWeight(0);
        st.Status = "capturing";
        for (int f = 0; f < 60; f++) { st.UpdatedAt = Time.unscaledTime; StubPlayerLoop.Frame(0.01f, r, d); }
        float back = mesh.GetBlendShapeWeight(0);
        for (int f = 0; f < 100; f++) StubPlayerLoop.Frame(0.01f, r, d); // no new data for 1 s > staleAfterSeconds
        float stale = mesh.GetBlendShapeWeight(0);
        Check("no_audio_relaxes_face", before > 99f && relaxed < 1f && back > 99f && stale < 1f,
            "before=" + F(before) + " no_audio=" + F(relaxed) + " capturing=" + F(back) + " stale=" + F(stale));
        d.StubInvoke("OnDisable");
        Check("raw_on_disable_resets", mesh.GetBlendShapeWeight(0) == 0f);
        r.StubInvoke("OnDisable");
    }

    static void UnscaledTime()
    {
        var r = NewReceiver();
        var go = new GameObject("Face");
        var mesh = Mesh(go, "Joy");
        var d = go.AddComponent<SkinnedMeshEmotionDriver>();
        d.bindings = DefaultBindings.FromLabels("");
        d.smoothingSeconds = 0.1f;
        d.receiver = r;
        d.StubInvoke("OnEnable");
        Inject(r, EmotionState.SetProbs, "happy", 1f);
        Time.timeScale = 0f; // game paused
        for (int f = 0; f < 50; f++) StubPlayerLoop.Frame(0.01f, r, d);
        Time.timeScale = 1f;
        Check("smoothing_uses_unscaled_time", mesh.GetBlendShapeWeight(0) > 95f, "weight after 0.5 s paused: " + F(mesh.GetBlendShapeWeight(0)));
        d.StubInvoke("OnDisable");
        r.StubInvoke("OnDisable");
    }

    static void InfiniteGain()
    {
        var r = NewReceiver();
        var go = new GameObject("Face");
        var mesh = Mesh(go, "Joy");
        var d = go.AddComponent<SkinnedMeshEmotionDriver>();
        d.bindings = new List<BlendshapeBinding> { new BlendshapeBinding("happy", "Joy", float.PositiveInfinity) };
        d.receiver = r;
        d.StubInvoke("OnEnable");
        Inject(r, EmotionState.SetProbs, "happy", 0f);
        bool nan = false;
        for (int f = 0; f < 20; f++) { StubPlayerLoop.Frame(0.01f, r, d); nan |= float.IsNaN(mesh.GetBlendShapeWeight(0)); }
        d.bindings[0].Gain = 1f;
        Inject(r, EmotionState.SetProbs, "happy", 1f);
        for (int f = 0; f < 200; f++) { StubPlayerLoop.Frame(0.01f, r, d); nan |= float.IsNaN(mesh.GetBlendShapeWeight(0)); }
        Check("infinite_gain_never_nan", !nan && mesh.GetBlendShapeWeight(0) > 99f, "final " + F(mesh.GetBlendShapeWeight(0)));
        d.StubInvoke("OnDisable");
        r.StubInvoke("OnDisable");
    }

    static void PortInUse()
    {
        var first = NewReceiver();
        var second = new GameObject("Second").AddComponent<SerDaemonReceiver>();
        second.oscPort = first.ListeningPort;
        int errors = logLines.Count;
        second.StubInvoke("OnEnable");
        var error = logLines.GetRange(errors, logLines.Count - errors).Find(l => l.StartsWith("ERROR SerDaemonReceiver"));
        Check("port_in_use_error", !second.IsListening && second.OpenError != null && error != null && error.Contains("already in use"),
            error ?? "(no error logged)");
        // The first one keeps the port for 5 s; the second tries again after 1, 2, 4 ... s, quietly, and
        // listens once the port is free (before: it stayed dead until re-enabled).
        var tries = new List<string>();
        int lastAttempts = second.OpenAttempts;
        float start = Time.unscaledTime;
        for (int f = 0; f < 200 && !second.IsListening; f++)
        {
            if (Time.unscaledTime - start >= 5f && first.IsListening) first.StubInvoke("OnDisable");
            StubPlayerLoop.Frame(0.1f, first, second);
            if (second.OpenAttempts != lastAttempts) { lastAttempts = second.OpenAttempts; tries.Add(F(Time.unscaledTime - start)); }
        }
        int errorsLogged = logLines.GetRange(errors, logLines.Count - errors).FindAll(l => l.StartsWith("ERROR SerDaemonReceiver")).Count;
        Check("port_open_retried_with_backoff", second.IsListening && second.OpenError == null && errorsLogged == 1 && tries.Count == 3,
            "tries at +" + string.Join(" s, +", tries.ToArray()) + " s; listening=" + second.IsListening + "; errors logged " + errorsLogged);
        second.StubInvoke("OnDisable");
        first.StubInvoke("OnDisable");
    }

    static void CloseTimes()
    {
        // OnDisable must not stall a frame: the socket is closed first, which wakes the receive thread.
        var times = new List<double>();
        for (int k = 0; k < 10; k++)
        {
            var r = NewReceiver();
            Thread.Sleep(20);
            r.StubInvoke("OnDisable");
            times.Add(r.LastCloseMilliseconds);
        }
        times.Sort();
        log("HARNESS CLOSE osc_ondisable_ms median=" + F(times[5]) + " max=" + F(times[9]));
        var w = new GameObject("WS").AddComponent<SerDaemonReceiver>();
        w.transport = SerDaemonReceiver.Transport.WebSocket;
        int port;
        using (var u = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0))) port = ((IPEndPoint)u.Client.LocalEndPoint).Port;
        w.webSocketUrl = "ws://127.0.0.1:" + port + "/"; // nobody there: connect and retry loop
        w.StubInvoke("OnEnable");
        Thread.Sleep(100);
        w.StubInvoke("OnDisable");
        log("HARNESS CLOSE ws_ondisable_ms=" + F(w.LastCloseMilliseconds));
        Check("close_does_not_stall", times[9] < 250 && w.LastCloseMilliseconds < 250,
            "osc max " + F(times[9]) + " ms, ws " + F(w.LastCloseMilliseconds) + " ms");
    }

    static void AllocationPerFrame()
    {
        // Main thread, per frame with one new daemon bundle: receiver Update + driver LateUpdate (bound
        // delegates, so the harness's own reflection does not count).
        var r = NewReceiver();
        var go = new GameObject("Face");
        Mesh(go, "Fcl_ALL_Joy", "Fcl_ALL_Angry", "Fcl_ALL_Fun", "Fcl_ALL_Sorrow");
        var d = go.AddComponent<SkinnedMeshEmotionDriver>();
        d.bindings = DefaultBindings.FromLabels("Fcl_ALL_");
        d.receiver = r;
        d.StubInvoke("OnEnable");
        Func<object, string, Action> bind = (o, m) => (Action)Delegate.CreateDelegate(typeof(Action), o,
            o.GetType().GetMethod(m, BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public));
        var update = bind(r, "Update");
        var late = bind(d, "LateUpdate");
        var probs = new[] { "angry", "calm", "disgust", "fearful", "happy", "neutral", "sad", "surprised" };
        var bundles = new List<byte[]>();
        for (int k = 0; k < 2; k++)
        {
            var el = new List<byte[]> { OscWriter.Message("/ser/state", k == 0 ? "happy" : "angry", 0.7f) };
            foreach (var p in probs) el.Add(OscWriter.Message("/ser/emotion/" + p, p == (k == 0 ? "happy" : "angry") ? 0.7f : 0.04f));
            el.Add(OscWriter.Message("/ser/voice", 1));
            el.Add(OscWriter.Message("/ser/seq", k));
            bundles.Add(OscWriter.Bundle(el.ToArray()));
        }
        var tx = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        EndPoint ep = new IPEndPoint(IPAddress.Loopback, r.ListeningPort);
        long total = 0;
        int measured = 0;
        for (int f = 0; f < 700; f++)
        {
            tx.SendTo(bundles[f % 2], ep);
            long target = f + 1;
            var sw = Stopwatch.StartNew();
            while (r.Frames < target && sw.ElapsedMilliseconds < 1000)
            {
                long a = GC.GetAllocatedBytesForCurrentThread();
                update();
                late();
                long b = GC.GetAllocatedBytesForCurrentThread();
                if (r.Frames >= target && f >= 200) { total += b - a; measured++; }
                if (r.Frames < target) Thread.Sleep(1);
            }
        }
        tx.Close();
        long perFrame = measured > 0 ? total / measured : -1;
        log("HARNESS ALLOC main_thread_per_frame_with_bundle=" + perFrame + " frames=" + measured);
        Check("main_thread_frame_allocation_free", measured >= 400 && perFrame == 0, perFrame + " bytes per frame over " + measured + " frames");
        d.StubInvoke("OnDisable");
        r.StubInvoke("OnDisable");
    }

    // ---------------------------------------------------------------- real avatars (UniVRM's validator)

    /// <summary>The recording's states, decoded by the package's own WebSocket decoder.</summary>
    static List<EmotionState> RecordedStates()
    {
        var states = new List<EmotionState>();
        foreach (var line in System.IO.File.ReadAllLines(Recording))
        {
            WsMessage m;
            string error;
            if (WsMessage.TryDecode(line, out m, out error) && m.State != null) states.Add(m.State);
        }
        return states;
    }

    /// <summary>
    /// A VRM 1.0 avatar like UniVRM's sample model: emotions, relaxed with overrideBlink and overrideMouth
    /// "block", neutral, blink and aa; returns the driver, the instance and the mesh. Blendshape i = expression i.
    /// </summary>
    static Vrm10EmotionDriver SampleVrm10(SerDaemonReceiver r, out UniVRM10.Vrm10Instance vrm, out SkinnedMeshRenderer mesh, bool binaryEmotions)
    {
        var go = new GameObject("VRM1 sample avatar");
        var keys = new[] { UniVRM10.ExpressionKey.Happy, UniVRM10.ExpressionKey.Angry, UniVRM10.ExpressionKey.Sad, UniVRM10.ExpressionKey.Relaxed,
            UniVRM10.ExpressionKey.Surprised, UniVRM10.ExpressionKey.Neutral, UniVRM10.ExpressionKey.Blink, UniVRM10.ExpressionKey.Aa };
        var names = new string[keys.Length];
        for (int i = 0; i < keys.Length; i++) names[i] = "Face." + keys[i].Name;
        mesh = Mesh(go, names);
        vrm = go.AddComponent<UniVRM10.Vrm10Instance>();
        for (int i = 0; i < keys.Length; i++)
        {
            var clip = vrm.StubBind(mesh, keys[i], i);
            if (keys[i].Equals(UniVRM10.ExpressionKey.Relaxed))
            {
                clip.OverrideBlink = UniGLTF.Extensions.VRMC_vrm.ExpressionOverrideType.block;
                clip.OverrideMouth = UniGLTF.Extensions.VRMC_vrm.ExpressionOverrideType.block;
            }
            if (binaryEmotions && i < 5) clip.IsBinary = true;
        }
        var d = go.AddComponent<Vrm10EmotionDriver>();
        d.receiver = r;
        d.stream = "rec";
        return d;
    }

    /// <summary>
    /// Replays the recording at 4 states a second (60 fps), with an auto-blink and a lip-sync script setting
    /// blink and aa to 1 every frame as UniVRM's do; returns frames in which blink was blocked (override rate
    /// above 0), frames in which the mouth was, and the largest actual weight each expression reached.
    /// </summary>
    static int[] Replay(SerDaemonReceiver r, Vrm10EmotionDriver d, UniVRM10.Vrm10Instance vrm, Dictionary<string, float> peaks, out int frames)
    {
        var states = RecordedStates();
        var expr = vrm.Runtime.Expression;
        int blinkBlocked = 0, mouthBlocked = 0;
        frames = 0;
        foreach (var st in states)
        {
            var s = r.Streams.Get("rec");
            s.ClearValues();
            foreach (var kv in st.Values(EmotionState.SetVrm)) s.SetValue(EmotionState.SetVrm, kv.Key, kv.Value);
            for (int f = 0; f < 15; f++)
            {
                s.UpdatedAt = Time.unscaledTime;
                expr.SetWeight(UniVRM10.ExpressionKey.Blink, 1f); // auto blink, eyes shut this frame
                expr.SetWeight(UniVRM10.ExpressionKey.Aa, 1f);    // lip sync, mouth open
                StubPlayerLoop.Frame(1f / 60f, vrm, d, r);
                frames++;
                if (expr.BlinkOverrideRate > 0f) blinkBlocked++;
                if (expr.MouthOverrideRate > 0f) mouthBlocked++;
                foreach (var kv in expr.ActualWeights)
                {
                    float p;
                    peaks.TryGetValue(kv.Key.Name, out p);
                    if (kv.Value > p) peaks[kv.Key.Name] = kv.Value;
                }
            }
        }
        return new[] { blinkBlocked, mouthBlocked };
    }

    static void Vrm10RestLeavesBlinkAlone()
    {
        // The case: relaxed sits at 0.002-0.012 in the daemon's weights and its overrideBlink is
        // "block", which UniVRM's validator turns into "blink off" for any weight above 0.
        var results = new Dictionary<float, int[]>();
        int frames = 0;
        foreach (float deadzone in new[] { 0f, FaceShaping.DefaultDeadzone })
        {
            UnityEngine.Object.StubNewScene();
            var r = NewReceiver();
            UniVRM10.Vrm10Instance vrm;
            SkinnedMeshRenderer mesh;
            var d = SampleVrm10(r, out vrm, out mesh, false);
            d.shaping.deadzone = deadzone;
            int notesBefore = logLines.FindAll(l => l.Contains("blocks blink")).Count;
            d.StubInvoke("OnEnable");
            results[deadzone] = Replay(r, d, vrm, new Dictionary<string, float>(), out frames);
            if (deadzone > 0f)
            {
                var notes = logLines.FindAll(l => l.Contains("blocks blink")).Count - notesBefore;
                Check("vrm10_block_override_warned_once", notes == 1, notes + " warnings naming relaxed's block overrides");
            }
            d.StubInvoke("OnDisable");
            r.StubInvoke("OnDisable");
        }
        int[] raw = results[0f], dz = results[FaceShaping.DefaultDeadzone];
        log("HARNESS FIGURE blink_blocked_frames deadzone=0: " + raw[0] + "/" + frames + " deadzone=" + FaceShaping.DefaultDeadzone + ": " + dz[0] + "/" + frames +
            "; mouth_blocked_frames " + raw[1] + " / " + dz[1] + " (validator: " + Validator() + ")");
        Check("vrm10_rest_leaves_blink_and_mouth_alone", dz[0] == 0 && dz[1] == 0 && raw[0] > 0 && raw[1] > 0,
            "blocked blink/mouth frames: " + dz[0] + "/" + dz[1] + " with the deadzone, " + raw[0] + "/" + raw[1] + " without, of " + frames);
    }

    static void Vrm10BinaryExpressionShows()
    {
        // The sample model's emotions are IsBinary: UniVRM rounds their weight, and the recording's angry
        // peaks at 0.24, which rounds to 0. The driver decides on/off itself and writes exactly 0 or 1.
        var r = NewReceiver();
        UniVRM10.Vrm10Instance vrm;
        SkinnedMeshRenderer mesh;
        var d = SampleVrm10(r, out vrm, out mesh, true);
        int notesBefore = logLines.FindAll(l => l.Contains("is IsBinary")).Count;
        d.StubInvoke("OnEnable");
        var peaks = new Dictionary<string, float>();
        int frames;
        Replay(r, d, vrm, peaks, out frames);
        int notes = logLines.FindAll(l => l.Contains("is IsBinary")).Count - notesBefore;
        float angry, happy;
        peaks.TryGetValue("angry", out angry);
        peaks.TryGetValue("happy", out happy);
        float sent = 0f;
        foreach (var st in RecordedStates()) sent = Math.Max(sent, st.Values(EmotionState.SetVrm)["angry"]);
        log("HARNESS FIGURE binary_angry_peak_sent=" + F(sent) + " actual_peak=" + F(angry) + " happy_actual_peak=" + F(happy));
        Check("vrm10_binary_expression_shows", angry == 1f && happy == 0f && notes == 5 && sent < 0.5f,
            "angry reached " + F(angry) + " (the daemon sent at most " + F(sent) + "), happy " + F(happy) + "; " + notes + " IsBinary notes");
        d.StubInvoke("OnDisable");
        r.StubInvoke("OnDisable");
    }

    static string Validator()
    {
#if SERDAEMON_REAL_UNIVRM_VALIDATOR
        return "UniVRM's DefaultExpressionValidator";
#else
        return "stand-in";
#endif
    }

    // ---------------------------------------------------------------- any driver with any daemon scheme

    static Vrm10EmotionDriver Vrm10Face(SerDaemonReceiver r, out SkinnedMeshRenderer mesh)
    {
        var go = new GameObject("VRM1 face");
        mesh = Mesh(go, "happy", "sad", "relaxed");
        var vrm = go.AddComponent<UniVRM10.Vrm10Instance>();
        vrm.StubBind(mesh, UniVRM10.ExpressionKey.Happy, 0);
        vrm.StubBind(mesh, UniVRM10.ExpressionKey.Sad, 1);
        vrm.StubBind(mesh, UniVRM10.ExpressionKey.Relaxed, 2);
        var d = go.AddComponent<Vrm10EmotionDriver>();
        d.receiver = r;
        d.smoothingSeconds = 0f;
        d.shaping.deadzone = 0f;
        d.StubInvoke("OnEnable");
        return d;
    }

    static Vrm0EmotionDriver Vrm0Face(SerDaemonReceiver r, out SkinnedMeshRenderer mesh)
    {
        var go = new GameObject("VRM0 face");
        mesh = Mesh(go, "Joy", "Sorrow", "Fun");
        var proxy = go.AddComponent<VRM.VRMBlendShapeProxy>();
        proxy.StubBind(mesh, VRM.BlendShapeKey.CreateFromPreset(VRM.BlendShapePreset.Joy), 0);
        proxy.StubBind(mesh, VRM.BlendShapeKey.CreateFromPreset(VRM.BlendShapePreset.Sorrow), 1);
        proxy.StubBind(mesh, VRM.BlendShapeKey.CreateFromPreset(VRM.BlendShapePreset.Fun), 2);
        var d = go.AddComponent<Vrm0EmotionDriver>();
        d.receiver = r;
        d.smoothingSeconds = 0f;
        d.shaping.deadzone = 0f;
        d.StubInvoke("OnEnable");
        return d;
    }

    /// <summary>The daemon's generic bundle for one decision; vrm0 values only when given (an older daemon sent none).</summary>
    static byte[] GenericBundle(float happy, float joy)
    {
        var m = new List<byte[]> { OscWriter.Message("/ser/state", "happy", 0.7f), OscWriter.Message("/ser/emotion/happy", 0.7f),
            OscWriter.Message("/ser/voice", 1), OscWriter.Message("/ser/seq", 1), OscWriter.Message("/ser/vrm/happy", happy),
            OscWriter.Message("/ser/vrm/sad", 0.1f), OscWriter.Message("/ser/vrm/relaxed", 0.2f) };
        if (joy >= 0f) { m.Add(OscWriter.Message("/ser/vrm0/Joy", joy)); m.Add(OscWriter.Message("/ser/vrm0/Sorrow", 0.1f)); }
        return OscWriter.Bundle(m.ToArray());
    }

    static void AnyDriverAnyScheme()
    {
        // Each case: a fresh receiver on real UDP, both drivers, one kind of traffic.
        var cases = new[] { "generic", "generic-without-vrm0", "vmc" };
        var got = new List<string>();
        bool ok = true;
        foreach (var kind in cases)
        {
            UnityEngine.Object.StubNewScene();
            var r = NewReceiver();
            SkinnedMeshRenderer m1, m0;
            var d1 = Vrm10Face(r, out m1);
            var d0 = Vrm0Face(r, out m0);
            if (kind == "vmc")
            {
                Send(r.ListeningPort, OscWriter.Bundle(OscWriter.Message("/VMC/Ext/Blend/Val", "Joy", 0.6f), OscWriter.Message("/VMC/Ext/Blend/Val", "Fun", 0.3f),
                    OscWriter.Message("/VMC/Ext/Blend/Apply")));
            }
            else Send(r.ListeningPort, GenericBundle(0.7f, kind == "generic" ? 0.9f : -1f));
            FramesUntil(() => r.Streams.Count == 1 && r.Streams[0].Version > 0, r, d1, d0);
            StubPlayerLoop.Frame(0.01f, r, d1, d0);
            var expr = d1.GetComponent<UniVRM10.Vrm10Instance>().Runtime.Expression; // the weights the driver set, before UniVRM's LateUpdate
            float happy = expr.GetWeight(UniVRM10.ExpressionKey.Happy) * 100f, relaxed = expr.GetWeight(UniVRM10.ExpressionKey.Relaxed) * 100f, joy = m0.GetBlendShapeWeight(0), fun = m0.GetBlendShapeWeight(2);
            got.Add(kind + ": vrm10 happy=" + F(happy) + " relaxed=" + F(relaxed) + " (" + d1.ValueSetInUse + "), vrm0 Joy=" + F(joy) + " Fun=" + F(fun) + " (" + d0.ValueSetInUse + ")");
            if (kind == "generic") ok &= Near(happy, 70f) && Near(joy, 90f) && d1.ValueSetInUse == "vrm" && d0.ValueSetInUse == "vrm0";
            if (kind == "generic-without-vrm0") ok &= Near(happy, 70f) && Near(joy, 70f) && Near(fun, 20f) && d0.ValueSetInUse == "vrm";
            if (kind == "vmc") ok &= Near(happy, 60f) && Near(relaxed, 30f) && Near(joy, 60f) && d1.ValueSetInUse == "vmc";
            d1.StubInvoke("OnDisable");
            d0.StubInvoke("OnDisable");
            r.StubInvoke("OnDisable");
        }
        Check("any_driver_any_scheme", ok, string.Join("; ", got.ToArray()));
    }

    static bool Near(float a, float b) { return Math.Abs(a - b) < 1e-3f; }

    static void WarnsWhenNothingDrives()
    {
        // A stream with probabilities only (e.g. a third-party sender): the VRM driver cannot show anything and says why, once.
        var r = NewReceiver();
        SkinnedMeshRenderer mesh;
        var d = Vrm0Face(r, out mesh);
        int before = logLines.Count;
        for (int f = 0; f < 30; f++) { Inject(r, EmotionState.SetProbs, "happy", 0.8f); StubPlayerLoop.Frame(0.01f, r, d); }
        var warnings = logLines.GetRange(before, logLines.Count - before).FindAll(l => l.StartsWith("WARNING Vrm0EmotionDriver") && l.Contains("carries probs"));
        Check("warns_when_stream_cannot_drive_the_driver", warnings.Count == 1 && warnings[0].Contains("none of vrm0, vmc, vrm") && mesh.GetBlendShapeWeight(0) == 0f,
            warnings.Count > 0 ? warnings[0] : "(no warning)");
        d.StubInvoke("OnDisable");
        r.StubInvoke("OnDisable");
    }

    // ---------------------------------------------------------------- rebinding

    static void NewAvatarRebinds()
    {
        // The case: a new vrmInstance stayed at 0 for 200 frames until Rebind() was called by hand.
        var r = NewReceiver();
        SkinnedMeshRenderer mesh;
        var d = Vrm10Face(r, out mesh);
        var first = d.vrmInstance;
        Inject(r, EmotionState.SetVrm, "happy", 0.8f);
        StubPlayerLoop.Frame(0.01f, r, d);
        // 1. Another avatar assigned to the field.
        var other = new GameObject("second avatar");
        var mesh2 = Mesh(other, "happy");
        var vrm2 = other.AddComponent<UniVRM10.Vrm10Instance>();
        vrm2.StubBind(mesh2, UniVRM10.ExpressionKey.Happy, 0);
        d.vrmInstance = vrm2;
        StubPlayerLoop.Frame(0.01f, r, d);
        float swapped = vrm2.Runtime.Expression.GetWeight(UniVRM10.ExpressionKey.Happy);
        // 2. The same instance reloaded (a new runtime, e.g. the model loaded again).
        vrm2.StubBind(mesh2, UniVRM10.ExpressionKey.Sad, 0);
        StubPlayerLoop.Frame(0.01f, r, d);
        float reloaded = vrm2.Runtime.Expression.GetWeight(UniVRM10.ExpressionKey.Happy);
        // 3. The avatar destroyed (the field now reads as null) and a new one added next to the driver.
        UnityEngine.Object.Destroy(vrm2);
        UnityEngine.Object.Destroy(first);
        var vrm3 = d.gameObject.AddComponent<UniVRM10.Vrm10Instance>();
        vrm3.StubBind(mesh, UniVRM10.ExpressionKey.Happy, 0);
        StubPlayerLoop.Frame(0.01f, r, d);
        float replaced = vrm3.Runtime.Expression.GetWeight(UniVRM10.ExpressionKey.Happy);
        Check("vrm10_new_avatar_rebinds_next_frame", Near(swapped, 0.8f) && Near(reloaded, 0.8f) && Near(replaced, 0.8f) && first != vrm3,
            "assigned " + F(swapped) + ", reloaded " + F(reloaded) + ", replaced " + F(replaced));
        // VRM 0.x: a new BlendShapeAvatar on the proxy (another model's clips).
        SkinnedMeshRenderer m0;
        var d0 = Vrm0Face(r, out m0);
        Inject(r, EmotionState.SetVrm0, "Joy", 0.5f);
        StubPlayerLoop.Frame(0.01f, r, d0);
        var proxy = d0.GetComponent<VRM.VRMBlendShapeProxy>();
        proxy.BlendShapeAvatar = new VRM.BlendShapeAvatar();
        proxy.StubBind(m0, VRM.BlendShapeKey.CreateFromPreset(VRM.BlendShapePreset.Joy), 2); // Joy now on blendshape 2
        StubPlayerLoop.Frame(0.01f, r, d0);
        Check("vrm0_new_blendshape_avatar_rebinds", Near(m0.GetBlendShapeWeight(2), 50f), "Joy on the new binding: " + F(m0.GetBlendShapeWeight(2)));
        d.StubInvoke("OnDisable");
        d0.StubInvoke("OnDisable");
        r.StubInvoke("OnDisable");
    }

    static void ReceiverFoundAfterSceneChange()
    {
        // A DontDestroyOnLoad avatar: the scene with its receiver unloads, the next scene brings a new receiver.
        var r1 = NewReceiver();
        SkinnedMeshRenderer m1, mRaw;
        var d = Vrm10Face(r1, out m1);
        var rawGo = new GameObject("raw face");
        mRaw = Mesh(rawGo, "Joy");
        var raw = rawGo.AddComponent<SkinnedMeshEmotionDriver>();
        raw.bindings = DefaultBindings.FromLabels("");
        raw.smoothingSeconds = 0f;
        raw.shaping.deadzone = 0f;
        raw.StubInvoke("OnEnable");
        r1.StubInvoke("OnDisable");
        UnityEngine.Object.Destroy(r1.gameObject); // scene unloaded
        var r2 = NewReceiver();                    // the next scene's receiver
        Inject(r2, EmotionState.SetVrm, "happy", 0.6f);
        Inject(r2, EmotionState.SetProbs, "happy", 0.7f);
        StubPlayerLoop.Frame(0.01f, r2, d, raw);
        float happy = d.vrmInstance.Runtime.Expression.GetWeight(UniVRM10.ExpressionKey.Happy);
        Check("receiver_found_after_scene_change", d.receiver == r2 && raw.receiver == r2 && Near(happy, 0.6f) && Near(mRaw.GetBlendShapeWeight(0), 70f),
            "vrm10 happy " + F(happy) + ", raw Joy " + F(mRaw.GetBlendShapeWeight(0)));
        d.StubInvoke("OnDisable");
        raw.StubInvoke("OnDisable");
        r2.StubInvoke("OnDisable");
    }

    static void RuntimeVrmLoadExample()
    {
        // The RuntimeVrm sample: Vrm10.LoadPathAsync, driver attached, a second load replaces the first avatar.
        var r = NewReceiver();
        var dir = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "serdaemon-vrm-" + Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(dir);
        var a = System.IO.Path.Combine(dir, "alice.vrm");
        var b = System.IO.Path.Combine(dir, "bob.vrm");
        System.IO.File.WriteAllText(a, "happy\nangry\nrelaxed\nneutral\n");
        System.IO.File.WriteAllText(b, "angry\nhappy\n");
        var loader = new GameObject("Loader").AddComponent<SerDaemon.Bridge.Samples.RuntimeVrmLoader>();
        loader.receiver = r;
        loader.stream = "mic";
        var d1 = loader.Load(a).Result;
        d1.StubInvoke("OnEnable"); // Unity runs it inside AddComponent
        var v1 = loader.Loaded;
        Inject(r, EmotionState.SetVrm, "angry", 0.3f);
        Inject(r, EmotionState.SetVrm, "happy", 0.12f);
        Inject(r, EmotionState.SetVrm, "neutral", 0.7f);
        for (int f = 0; f < 60; f++) StubPlayerLoop.Frame(1f / 60f, r, v1, d1);
        var face1 = v1.GetComponent<SkinnedMeshRenderer>();
        float angry1 = face1.GetBlendShapeWeight(1), happy1 = face1.GetBlendShapeWeight(0);
        var d2 = loader.Load(b).Result;
        d2.StubInvoke("OnEnable");
        var v2 = loader.Loaded;
        for (int f = 0; f < 60; f++) StubPlayerLoop.Frame(1f / 60f, r, v2, d2);
        float angry2 = v2.GetComponent<SkinnedMeshRenderer>().GetBlendShapeWeight(0);
        int errors = logLines.Count;
        var missing = loader.Load(System.IO.Path.Combine(dir, "nope.vrm")).Result;
        bool errorLogged = logLines.GetRange(errors, logLines.Count - errors).Exists(l => l.StartsWith("ERROR RuntimeVrmLoader: cannot load"));
        Check("runtime_vrm_load_example", angry1 > 99f && happy1 == 0f && v1 == null && angry2 > 99f && missing == null && errorLogged && loader.Loaded == v2,
            "first avatar angry=" + F(angry1) + " happy=" + F(happy1) + " (dominant, full weight); first destroyed=" + (v1 == null) + "; second angry=" + F(angry2) + "; missing file logged=" + errorLogged);
        d2.StubInvoke("OnDisable");
        r.StubInvoke("OnDisable");
        System.IO.Directory.Delete(dir, true);
    }

    static void Vrm0MissingClipWarned()
    {
        // UniVRM's proxy ignores a clip its BlendShapeAvatar lacks without a word; the driver says so, once per clip.
        var r = NewReceiver();
        var go = new GameObject("VRM0 without Sorrow");
        var mesh = Mesh(go, "Joy");
        var proxy = go.AddComponent<VRM.VRMBlendShapeProxy>();
        proxy.StubBind(mesh, VRM.BlendShapeKey.CreateFromPreset(VRM.BlendShapePreset.Joy), 0).IsBinary = true;
        var d = go.AddComponent<Vrm0EmotionDriver>();
        d.smoothingSeconds = 0f;
        d.StubInvoke("OnEnable");
        int before = logLines.Count;
        Inject(r, EmotionState.SetVrm0, "Joy", 0.4f);
        Inject(r, EmotionState.SetVrm0, "Sorrow", 0.3f);
        Inject(r, EmotionState.SetVrm0, "Surprised", 0.1f);
        for (int f = 0; f < 100; f++) StubPlayerLoop.Frame(0.01f, r, d);
        var lines = logLines.GetRange(before, logLines.Count - before);
        var missing = lines.FindAll(l => l.StartsWith("WARNING Vrm0EmotionDriver") && l.Contains("not found on"));
        var binary = lines.FindAll(l => l.Contains("clip 'Joy' is IsBinary"));
        Check("vrm0_missing_clip_warned_once", missing.Count == 2 && missing.Exists(l => l.Contains("'Sorrow'")) && missing.Exists(l => l.Contains("'Surprised'"))
            && binary.Count == 1 && mesh.GetBlendShapeWeight(0) == 100f,
            missing.Count + " missing-clip warnings (" + string.Join(" | ", missing.ToArray()) + "); " + binary.Count + " IsBinary note; Joy " + F(mesh.GetBlendShapeWeight(0)));
        d.StubInvoke("OnDisable");
        r.StubInvoke("OnDisable");
    }

    static void InspectorEvents()
    {
        // The receiver's UnityEvents (wired in the Inspector in a real project): per changed stream, and per label change.
        var r = NewReceiver();
        var states = new List<string>();
        var labels = new List<string>();
        r.onStateChanged.AddListener(s => states.Add(s.Stream + ":" + s.Label));
        r.onLabelChanged.AddListener(l => labels.Add(l));
        foreach (var label in new[] { "calm", "calm", "angry", "angry", "neutral" })
        {
            long before = r.Frames;
            Send(r.ListeningPort, OscWriter.Bundle(OscWriter.Message("/ser/state", label, 0.6f), OscWriter.Message("/ser/seq", (int)before)));
            FramesUntil(() => r.Frames > before, r);
        }
        Check("inspector_unity_events", states.Count == 5 && string.Join(",", labels.ToArray()) == "calm,angry,neutral",
            "onStateChanged " + states.Count + "x, onLabelChanged " + string.Join(",", labels.ToArray()));
        r.StubInvoke("OnDisable");
    }

    static void VrmDriversAllocationFree()
    {
        // Both VRM drivers per frame with every shaping step on and the VRM 0.x one renaming "vrm" values:
        // bound delegates, so the harness's reflection does not count.
        var r = NewReceiver();
        SkinnedMeshRenderer m1, m0;
        var d1 = Vrm10Face(r, out m1);
        var d0 = Vrm0Face(r, out m0);
        foreach (var d in new ExpressionDriverBase[] { d1, d0 })
        {
            d.shaping.deadzone = 0.1f; d.shaping.gain = 2f; d.shaping.normalizeToPeak = true; d.shaping.dominantOnly = true;
        }
        Func<object, Action> late = o => (Action)Delegate.CreateDelegate(typeof(Action), o,
            typeof(ExpressionDriverBase).GetMethod("LateUpdate", BindingFlags.Instance | BindingFlags.NonPublic));
        var l1 = late(d1);
        var l0 = late(d0);
        long total = 0, vrm10 = 0;
        int frames = 0;
        for (int f = 0; f < 700; f++)
        {
            var s = Inject(r, EmotionState.SetVrm, "happy", (f / 50) % 2 == 0 ? 0.6f : 0.1f);
            s.SetValue(EmotionState.SetVrm, "sad", (f / 50) % 2 == 0 ? 0.1f : 0.5f);
            s.SetValue(EmotionState.SetVrm, "relaxed", 0.05f);
            Time.unscaledDeltaTime = 0.011f;
            Time.unscaledTime += 0.011f;
            long a = GC.GetAllocatedBytesForCurrentThread();
            l1();
            long mid = GC.GetAllocatedBytesForCurrentThread();
            l0();
            long b = GC.GetAllocatedBytesForCurrentThread();
            if (f >= 200) { total += b - a; frames++; vrm10 += mid - a; }
        }
        log("HARNESS ALLOC vrm_drivers_per_frame=" + total / frames + " (vrm10 " + vrm10 / frames + ") frames=" + frames);
        Check("vrm_drivers_frame_allocation_free", total == 0 && m0.GetBlendShapeWeight(1) > 0f,
            total + " bytes over " + frames + " frames (VRM 1.0 + VRM 0.x renaming vrm); Sorrow " + F(m0.GetBlendShapeWeight(1)));
        d1.StubInvoke("OnDisable");
        d0.StubInvoke("OnDisable");
        r.StubInvoke("OnDisable");
    }
}
