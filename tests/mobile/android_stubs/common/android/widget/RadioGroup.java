package android.widget;
public class RadioGroup extends android.view.View {
    public interface OnCheckedChangeListener { void onCheckedChanged(RadioGroup group, int checkedId); }
    public RadioGroup(android.content.Context context) { super(context); }
    public void addView(android.view.View child) {}
    public void check(int id) {}
    public void setOnCheckedChangeListener(OnCheckedChangeListener listener) {}
}
