// Runs the NUnit-style tests of Tests/Runtime outside Unity (on Tests~/NUnit's stand-in): every public
// [Test] method of every [TestFixture] class, one line each: "SELFTEST ok Class.Method" or
// "SELFTEST FAIL Class.Method <why>", then "SELFTEST PASS|FAIL passed=N failed=M".
using System;
using System.Reflection;
using NUnit.Framework;

static class TestRunner
{
    public static int Run(Action<string> log)
    {
        int passed = 0, failed = 0;
        foreach (var type in typeof(TestRunner).Assembly.GetTypes())
        {
            if (!Attribute.IsDefined(type, typeof(TestFixtureAttribute))) continue;
            foreach (var m in type.GetMethods(BindingFlags.Public | BindingFlags.Instance))
            {
                if (!Attribute.IsDefined(m, typeof(TestAttribute))) continue;
                string name = type.Name + "." + m.Name;
                try
                {
                    m.Invoke(Activator.CreateInstance(type), null);
                    passed++;
                    log("SELFTEST ok " + name);
                }
                catch (TargetInvocationException e)
                {
                    failed++;
                    var inner = e.InnerException ?? e;
                    log("SELFTEST FAIL " + name + " " + (inner is AssertionException ? inner.Message : inner.ToString()).Replace('\n', ' '));
                }
            }
        }
        log("SELFTEST " + (failed == 0 && passed > 0 ? "PASS" : "FAIL") + " passed=" + passed + " failed=" + failed);
        return failed == 0 && passed > 0 ? 0 : 1;
    }
}
