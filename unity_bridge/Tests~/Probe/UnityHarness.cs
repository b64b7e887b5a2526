// Drives the Unity-facing components (Runtime/Unity, Runtime/Vrm10, Runtime/Vrm0) outside Unity, compiled
// against Tests~/Stubs (UnityEngine and UniVRM stand-ins), stepped frame by frame like Unity's player loop
// (every Update, then every LateUpdate, in DefaultExecutionOrder order).
//
//   mono UnityHarness.exe (--udp PORT | --ws URL) [--faces first,b,...] [--seconds T] [--idle-exit S]
//   mono UnityHarness.exe --selftest
//
// Live mode: one SerDaemonReceiver and one SkinnedMeshEmotionDriver per face, each face on its own stub
// mesh with VRoid-style blendshapes and following the stream named in --faces. Prints "READY", then
// "UNITY WEIGHT <face> <blendshape> <0..100>" when a weight changes by 0.5 or more (and when it reaches
// 0), "UNITY MOOD <kind> stream=.. time=.. <evidence>" per mood event (--ws, a daemon with --mood),
// Debug.Log* lines as "LOG/WARNING/ERROR ...", and once the stream has been idle for --idle-exit
// seconds: "UNITY FINAL <face> <name>=<weight> ...", "UNITY DONE frames=N label=L stale=0|1 streams=a,b",
// "UNITY CLOSED listening=0 close_ms=X".
// --selftest: the components' behaviour on the stubs, one "HARNESS ok|FAIL <name> ..." line each, then
// "HARNESS PASS|FAIL"; also "HARNESS ALLOC ..." and "HARNESS CLOSE ..." figures.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.Threading;
using SerDaemon.Bridge;
using UnityEngine;

static class UnityHarness
{
    static void Out(string s) { Console.Out.WriteLine(s); Console.Out.Flush(); }
    static string F(float v) { return v.ToString("F2", CultureInfo.InvariantCulture); }

    static readonly string[] FaceShapes = { "Fcl_ALL_Neutral", "Fcl_ALL_Joy", "Fcl_ALL_Angry", "Fcl_ALL_Fun", "Fcl_ALL_Sorrow" };

    /// <summary>
    /// The sample scene's scripts (Samples~/BasicAvatar) on the stubs: MockDaemonSender replays the recording
    /// (4x speed) as OSC to a SerDaemonReceiver; EmotionHud shows the state. Prints
    /// "SAMPLE loaded=N sent=M frames=K label=L" and "SAMPLE HUD <first line>".
    /// </summary>
    static int RunSample(string recording)
    {
        var go = new GameObject("SER Daemon");
        var receiver = go.AddComponent<SerDaemonReceiver>();
        receiver.oscPort = 0;
        receiver.StubInvoke("OnEnable");
        var sender = go.AddComponent<SerDaemon.Bridge.Samples.MockDaemonSender>();
        sender.recordingPath = recording;
        sender.port = receiver.ListeningPort;
        sender.speed = 4f;
        sender.loop = false;
        sender.StubInvoke("OnEnable");
        var hud = new GameObject("HUD").AddComponent<SerDaemon.Bridge.Samples.EmotionHud>();
        // A VRM 0.x avatar following the same stream (the sample's replay carries vrm0 as the daemon does).
        var avatar = new GameObject("VRM0 avatar");
        var mesh = new Mesh { name = "Face" };
        mesh.StubAddBlendShape("Angry");
        var face = avatar.AddComponent<SkinnedMeshRenderer>();
        face.sharedMesh = mesh;
        var proxy = avatar.AddComponent<VRM.VRMBlendShapeProxy>();
        proxy.StubBind(face, VRM.BlendShapeKey.CreateFromPreset(VRM.BlendShapePreset.Angry), 0);
        var vrm0 = avatar.AddComponent<Vrm0EmotionDriver>();
        vrm0.shaping.normalizeToPeak = true;
        vrm0.StubInvoke("OnEnable");
        float angryPeak = 0f;
        string setUsed = null;
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed.TotalSeconds < 20 && (sender.Sent < sender.Loaded || receiver.Frames < sender.Loaded))
        {
            Thread.Sleep(5);
            StubPlayerLoop.Frame(0.02f, receiver, sender, hud, vrm0);
            hud.StubInvoke("OnGUI");
            angryPeak = Math.Max(angryPeak, face.GetBlendShapeWeight(0));
            if (vrm0.ValueSetInUse != null) setUsed = vrm0.ValueSetInUse;
        }
        Out("SAMPLE VRM0 Angry peak=" + F(angryPeak) + " set=" + setUsed);
        Out("SAMPLE loaded=" + sender.Loaded + " sent=" + sender.Sent + " frames=" + receiver.Frames + " label=" + receiver.State.Label);
        Out("SAMPLE HUD " + (UnityEngine.GUI.StubLastLabel ?? "").Split('\n')[0]);
        sender.StubInvoke("OnDisable");
        receiver.StubInvoke("OnDisable");
        return 0;
    }

    static int Main(string[] args)
    {
        UnityEngine.Debug.Sink = Out;
        int rec = Array.IndexOf(args, "--recording");
        if (rec >= 0 && rec + 1 < args.Length) HarnessTests.Recording = args[rec + 1];
        if (Array.IndexOf(args, "--selftest") >= 0) return HarnessTests.Run(Out);
        int sample = Array.IndexOf(args, "--sample");
        if (sample >= 0 && sample + 1 < args.Length) return RunSample(args[sample + 1]);
        int port = -1;
        string url = null, faces = "first";
        double seconds = 30, idleExit = 1.5;
        for (int i = 0; i + 1 < args.Length; i += 2)
        {
            if (args[i] == "--udp") port = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
            else if (args[i] == "--ws") url = args[i + 1];
            else if (args[i] == "--faces") faces = args[i + 1];
            else if (args[i] == "--seconds") seconds = double.Parse(args[i + 1], CultureInfo.InvariantCulture);
            else if (args[i] == "--idle-exit") idleExit = double.Parse(args[i + 1], CultureInfo.InvariantCulture);
        }

        var rig = new GameObject("SER Daemon");
        var receiver = rig.AddComponent<SerDaemonReceiver>();
        receiver.transport = url != null ? SerDaemonReceiver.Transport.WebSocket : SerDaemonReceiver.Transport.Osc;
        receiver.oscPort = port;
        if (url != null) receiver.webSocketUrl = url;
        receiver.staleAfterSeconds = 0.5f;
        long stateEvents = 0;
        receiver.StateChanged += s => stateEvents++;
        receiver.MoodEventReceived += e => Out("UNITY MOOD " + e);
        receiver.StubInvoke("OnEnable");
        if (!receiver.IsListening) { Out("UNITY FAILED to listen"); return 1; }

        var selectors = faces.Split(',');
        var renderers = new List<SkinnedMeshRenderer>();
        var scripts = new List<MonoBehaviour> { receiver };
        foreach (var sel in selectors)
        {
            var mesh = new Mesh { name = "Face" };
            foreach (var n in FaceShapes) mesh.StubAddBlendShape(n);
            var go = new GameObject("Avatar " + sel);
            var renderer = go.AddComponent<SkinnedMeshRenderer>();
            renderer.sharedMesh = mesh;
            var driver = go.AddComponent<SkinnedMeshEmotionDriver>();
            driver.bindings = DefaultBindings.FromLabels("Fcl_ALL_"); // Fcl_ALL_Surprised is not on this mesh
            driver.smoothingSeconds = 0.1f;
            driver.stream = sel;
            driver.StubInvoke("OnEnable"); // finds the receiver and the renderer on its own
            renderers.Add(renderer);
            scripts.Add(driver);
        }
        Out("READY " + (url != null ? "ws=" + url : "udp=" + port));

        var last = new float[selectors.Length, FaceShapes.Length];
        var clock = Stopwatch.StartNew();
        double lastFrameAt = double.NaN;
        long seen = 0;
        var loop = scripts.ToArray();
        while (clock.Elapsed.TotalSeconds < seconds)
        {
            Thread.Sleep(10);
            StubPlayerLoop.Frame(0.01f, loop);
            for (int f = 0; f < selectors.Length; f++)
            {
                for (int i = 0; i < FaceShapes.Length; i++)
                {
                    float w = renderers[f].GetBlendShapeWeight(i);
                    if (Math.Abs(w - last[f, i]) >= 0.5f || (w == 0f && last[f, i] != 0f))
                    {
                        last[f, i] = w;
                        Out("UNITY WEIGHT " + selectors[f] + " " + FaceShapes[i] + " " + F(w));
                    }
                }
            }
            long versions = 0;
            for (int s = 0; s < receiver.Streams.Count; s++) versions += receiver.Streams[s].Version;
            if (versions != seen) { seen = versions; lastFrameAt = clock.Elapsed.TotalSeconds; }
            if (!double.IsNaN(lastFrameAt) && clock.Elapsed.TotalSeconds - lastFrameAt > idleExit) break;
        }
        for (int f = 0; f < selectors.Length; f++)
        {
            var final = new List<string>();
            for (int i = 0; i < FaceShapes.Length; i++) final.Add(FaceShapes[i] + "=" + F(renderers[f].GetBlendShapeWeight(i)));
            Out("UNITY FINAL " + selectors[f] + " " + string.Join(" ", final.ToArray()));
        }
        var names = new List<string>();
        for (int s = 0; s < receiver.Streams.Count; s++) names.Add(receiver.Streams[s].Stream);
        Out("UNITY DONE frames=" + receiver.Frames + " events=" + stateEvents + " label=" + receiver.State.Label +
            " stale=" + (receiver.IsStale ? 1 : 0) + " streams=" + string.Join(",", names.ToArray()));
        receiver.StubInvoke("OnDisable");
        Out("UNITY CLOSED listening=" + (receiver.IsListening ? 1 : 0) + " close_ms=" +
            receiver.LastCloseMilliseconds.ToString("F2", CultureInfo.InvariantCulture));
        return 0;
    }
}
