"""工作日历: working days by China's official calendar with 调休, and the admin's own days."""
