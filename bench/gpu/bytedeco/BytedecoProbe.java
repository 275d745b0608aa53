import java.lang.reflect.Method;

/**
 * Does org.bytedeco:cuda (the design card's CUDA-from-Java dependency, 12.9-9.10-1.5.12) load on
 * this machine? Its JNI libraries link against the CUDA 12 runtime (libcudart.so.12,
 * libcublas.so.12); Lathe's own library is built with the local toolkit (CUDA 13) instead.
 * Run by bench/gpu/bytedeco/probe.sh; prints one line per step and what failed, never throws.
 */
public final class BytedecoProbe {
    public static void main(String[] args) {
        System.out.println("java " + System.getProperty("java.version") + ", os.arch " + System.getProperty("os.arch"));
        for (String preset : new String[] {"org.bytedeco.cuda.global.cudart", "org.bytedeco.cuda.global.cublas"}) {
            try {
                Class<?> loader = Class.forName("org.bytedeco.javacpp.Loader");
                Method load = loader.getMethod("load", Class.class);
                Class<?> presetClass = Class.forName(preset);
                Object path = load.invoke(null, presetClass);
                System.out.println(preset + ": loaded (" + path + ")");
                if (preset.endsWith("cudart")) {
                    int[] count = new int[1];
                    Method getCount = presetClass.getMethod("cudaGetDeviceCount", int[].class);
                    Object status = getCount.invoke(null, (Object) count);
                    System.out.println("  cudaGetDeviceCount -> status " + status + ", devices " + count[0]);
                }
            } catch (ReflectiveOperationException | LinkageError e) {
                Throwable cause = e.getCause() != null ? e.getCause() : e;
                System.out.println(preset + ": FAILED " + cause.getClass().getSimpleName() + ": " + cause.getMessage());
            }
        }
    }
}
