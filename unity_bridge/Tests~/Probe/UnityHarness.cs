// Drives the Unity-facing components (Runtime/Unity) outside Unity, compiled against Tests~/Stubs:
// a SerDaemonReceiver in OSC mode and a SkinnedMeshEmotionDriver on a stub mesh with VRoid-style
// blendshape names, stepped frame by frame like Unity's player loop (Update, then LateUpdate).
//
//   mono UnityHarness.exe --udp PORT [--seconds T] [--idle-exit S]
//
// Prints "READY udp=PORT", "UNITY WEIGHT <blendshape> <0..100>" when a blendshape's weight changes by
// 0.5 or more (and when it reaches 0), Debug.LogWarning lines as "WARNING ...", and "UNITY DONE frames=N
// label=L stale=0|1" (after "UNITY FINAL <name>=<weight> ...") once the stream has been idle for --idle-exit seconds (default 1.5).
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

    static int Main(string[] args)
    {
        int port = 0;
        double seconds = 30, idleExit = 1.5;
        for (int i = 0; i + 1 < args.Length; i += 2)
        {
            if (args[i] == "--udp") port = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
            else if (args[i] == "--seconds") seconds = double.Parse(args[i + 1], CultureInfo.InvariantCulture);
            else if (args[i] == "--idle-exit") idleExit = double.Parse(args[i + 1], CultureInfo.InvariantCulture);
        }
        UnityEngine.Debug.Sink = Out;

        var mesh = new Mesh { name = "Face" };
        foreach (var n in new[] { "Fcl_ALL_Neutral", "Fcl_ALL_Joy", "Fcl_ALL_Angry", "Fcl_ALL_Fun", "Fcl_ALL_Sorrow" })
            mesh.StubAddBlendShape(n);
        var go = new GameObject("Avatar");
        var renderer = go.AddComponent<SkinnedMeshRenderer>();
        renderer.sharedMesh = mesh;
        var receiver = go.AddComponent<SerDaemonReceiver>();
        receiver.transport = SerDaemonReceiver.Transport.Osc;
        receiver.oscPort = port;
        receiver.staleAfterSeconds = 0.5f;
        var driver = go.AddComponent<SkinnedMeshEmotionDriver>();
        driver.bindings = DefaultBindings.FromLabels("Fcl_ALL_"); // Fcl_ALL_Surprised is not on this mesh
        driver.smoothingSeconds = 0.1f;
        long stateEvents = 0;
        receiver.StateChanged += s => stateEvents++;

        receiver.StubInvoke("OnEnable"); // driver finds the receiver and the renderer on its own
        driver.StubInvoke("OnEnable");
        if (!receiver.IsListening) { Out("UNITY FAILED to listen"); return 1; }
        Out("READY udp=" + port);

        var last = new float[mesh.blendShapeCount];
        var clock = Stopwatch.StartNew();
        double lastFrameAt = double.NaN;
        long frames = 0, seenFrames = 0;
        float dt = 0.01f;
        while (clock.Elapsed.TotalSeconds < seconds)
        {
            Thread.Sleep(10);
            Time.deltaTime = dt;
            Time.unscaledTime += dt;
            receiver.StubInvoke("Update");
            driver.StubInvoke("LateUpdate");
            frames++;
            for (int i = 0; i < last.Length; i++)
            {
                float w = renderer.GetBlendShapeWeight(i);
                if (Math.Abs(w - last[i]) >= 0.5f || (w == 0f && last[i] != 0f))
                {
                    last[i] = w;
                    Out("UNITY WEIGHT " + mesh.GetBlendShapeName(i) + " " + w.ToString("F2", CultureInfo.InvariantCulture));
                }
            }
            if (receiver.Frames != seenFrames) { seenFrames = receiver.Frames; lastFrameAt = clock.Elapsed.TotalSeconds; }
            if (!double.IsNaN(lastFrameAt) && clock.Elapsed.TotalSeconds - lastFrameAt > idleExit) break;
        }
        var final = new List<string>();
        for (int i = 0; i < last.Length; i++)
            final.Add(mesh.GetBlendShapeName(i) + "=" + renderer.GetBlendShapeWeight(i).ToString("F2", CultureInfo.InvariantCulture));
        Out("UNITY FINAL " + string.Join(" ", final.ToArray()));
        Out("UNITY DONE frames=" + receiver.Frames + " events=" + stateEvents + " label=" + receiver.State.Label +
            " stale=" + (receiver.IsStale ? 1 : 0) + " writes=" + renderer.StubWrites);
        receiver.StubInvoke("OnDisable");
        Out("UNITY CLOSED listening=" + (receiver.IsListening ? 1 : 0));
        return 0;
    }
}
