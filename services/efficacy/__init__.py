"""Efficacy: Working-day calendar, deadline clocks, yellow and red cards (红黄牌) with supervision, KPIs, ratings (好差评), complaints."""
