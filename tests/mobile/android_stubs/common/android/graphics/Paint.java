package android.graphics;
public class Paint {
    public static final int ANTI_ALIAS_FLAG = 1;
    public enum Style { FILL, STROKE, FILL_AND_STROKE }
    public enum Cap { BUTT, ROUND, SQUARE }
    public enum Join { MITER, ROUND, BEVEL }
    public Paint() {}
    public Paint(int flags) {}
    public void setColor(int color) {}
    public void setStyle(Style style) {}
    public void setStrokeCap(Cap cap) {}
    public void setStrokeJoin(Join join) {}
    public void setStrokeWidth(float width) {}
}
