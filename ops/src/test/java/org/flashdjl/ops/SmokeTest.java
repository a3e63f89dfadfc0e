package org.flashdjl.ops;
import ai.djl.ndarray.*;
import ai.djl.ndarray.types.*;
import org.junit.jupiter.api.Test;
class SmokeTest {
  @Test void engine() {
    try (NDManager m = NDManager.newBaseManager()) {
      NDArray a = m.randomNormal(new Shape(2, 3));
      System.out.println(m.getEngine().getEngineName() + " " + a.getDevice() + " " + a.matMul(a.transpose()));
      NDArray h = a.toType(DataType.FLOAT16, false);
      System.out.println(h.getDataType() + " " + h.get("0:1"));
    }
  }
}
